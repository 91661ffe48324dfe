"""`clude team plan`: a goal turned into a graph of tasks by clude's own model (propose.py), checked with
the rules of `clude run`'s plans, then added to the board in one push."""

"""Files that run inside the user's own test process (put on its PYTHONPATH): standard library only."""

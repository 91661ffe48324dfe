"""`clude team serve`: the team's dashboard in a browser (app.py: routes and the token; source.py: what it
reads; model.py: what it shows; templates/ and static/: the pages, no build step)."""

"""`layerlapse watch`: a local web server over a run folder that shows the report page live, snapshot by snapshot,
while the run records (before, during or after it). It reads the run folder only: it never writes to it, never takes
its lock, and serves nothing but the page made from the run's own files, through the run folder's layout.
"""

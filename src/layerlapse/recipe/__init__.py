"""The recipe's steps over a stored run: map, measure, draw, report. Each reads and writes the run folder."""

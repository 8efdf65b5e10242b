"""The run folder: what a run holds, where (layout), one writer at a time (lock), whole files (atomic, blocks)."""

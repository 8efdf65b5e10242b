"""Helpers with no stage of their own: thread budgets, memory, progress output, cache paths."""

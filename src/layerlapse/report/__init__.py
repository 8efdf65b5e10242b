"""The interactive report: one self-contained report.html per run."""

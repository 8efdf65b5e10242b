"""Helpers for tests of the command line."""

import re
import subprocess


def assert_error(result: subprocess.CompletedProcess[str], pattern: str) -> str:
    """Exit code 2 and exactly one line on stderr, "error: ..." matching `pattern`; returns that line."""
    assert result.returncode == 2, f"exit code {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert result.stdout == ""
    return lines[0]

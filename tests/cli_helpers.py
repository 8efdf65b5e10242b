"""Helpers for tests of the command line and of what a module imports."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path


def assert_error(result: subprocess.CompletedProcess[str], pattern: str) -> str:
    """Exit code 2 and exactly one line on stderr, "error: ..." matching `pattern`; returns that line."""
    assert result.returncode == 2, f"exit code {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert result.stdout == ""
    return lines[0]


def assert_runs_clean(script: str, package_file: str) -> None:
    """Run `script` (dedented) in a fresh Python that imports the package next to `package_file`; it must print
    "clean" and nothing else, and exit 0."""
    source = next(folder for folder in Path(package_file).resolve().parents if folder.name == "layerlapse").parent
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(source)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"

"""No module of layerlapse grows past what one reads in a sitting (issue 27): a module longer than MOST_LINES holds
more than one idea, and is split by job, as render/ and store/ were."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "layerlapse"
MOST_LINES = 600


def lines_of(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def held_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py")
                  if "__pycache__" not in path.parts)


def test_no_module_is_longer_than_most_lines() -> None:
    too_long = {path.relative_to(PACKAGE).as_posix(): lines_of(path) for path in held_modules()
                if lines_of(path) > MOST_LINES}
    assert not too_long, f"modules over {MOST_LINES} lines (split them by job): {too_long}"


def test_the_rule_sees_every_stage() -> None:
    """The walk reaches the stages it holds (a wrong root would pass every module by finding none)."""
    held = {path.relative_to(PACKAGE).parts[0] for path in held_modules()}
    assert {"render", "store", "capture", "recipe", "maps", "report", "cli.py"} <= held


def test_the_tests_mirror_the_package() -> None:
    """Each folder of tests is a stage of the package (tests/store/ for layerlapse/store/, …); the package-wide tests
    (the CLI, the docs, the import rules) sit at the top."""
    tests = Path(__file__).resolve().parent
    folders = {path.name for path in tests.iterdir() if path.is_dir() and path.name != "__pycache__"}
    stages = {path.name for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert folders and folders <= stages, folders - stages

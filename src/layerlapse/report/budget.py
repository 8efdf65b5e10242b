"""The report's size budget: past it the page shows a stratified, seeded subsample of the points and says so, and
Python warns (`ReportSizeWarning`); points are never cut silently.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

from ..errors import ConfigError, ReportSizeWarning
from .._util.sampling import stratified_rows
from .content import ReportContent

MB = 1_000_000  # the size budget is in SI megabytes, as file managers show sizes
BUDGET_MARGIN = 0.98  # aim a little under what the budget holds: the PNG atlas's size is known once encoded


def fit_to_budget(content: ReportContent, budget_bytes: int, budget_mb: float,
                  render: Callable[[ReportContent], str]) -> str:
    """The page (`render`: page.render_page), with every point if it fits the budget, else with a stratified
    subsample that does (and a warning).

    The subsample is sized from the page's size as a line in its number of points, and shrunk further in the rare
    case the encoded atlas comes out larger than the line says."""
    page = render(content)
    full_size = len(page.encode())
    if full_size <= budget_bytes:
        return page
    fixed, per_point = _size_line(content, full_size, render)
    keep = min(int((budget_bytes - fixed) / per_point * BUDGET_MARGIN), len(content.probe) - 1)
    while keep >= 1:
        shown = subsample(content, keep)
        note = budget_note(shown, budget_mb)
        page = render(dataclasses.replace(shown, notes=[note, *shown.notes]))
        if len(page.encode()) <= budget_bytes:
            warnings.warn(ReportSizeWarning(
                f"report.html would take {full_size / MB:.1f} MB, over its size budget of {budget_mb:g} MB, so it "
                f"shows a stratified, seeded subsample: {note}; raise size_budget_mb to show every point"),
                stacklevel=3)
            return page
        keep = int(keep * 0.9)
    raise ConfigError(f"size_budget_mb={budget_mb:g} is too small for this run: the page without its points already "
                      f"takes about {max(fixed, 0) / MB:.1f} MB; give a larger budget")


def _size_line(content: ReportContent, full_size: int, render: Callable[[ReportContent], str]
               ) -> tuple[float, float]:
    """The page's bytes without points and per point, from its size with all of them and with a tenth."""
    tenth = subsample(content, max(1, len(content.probe) // 10))
    tenth_size = len(render(tenth).encode())
    per_point = max((full_size - tenth_size) / max(len(content.probe) - len(tenth.probe), 1), 1.0)
    return full_size - per_point * len(content.probe), per_point


def budget_note(shown: ReportContent, budget_mb: float) -> str:
    """What the page says about a subsample, e.g. 'showing 5,000 of 60,000 probe points (size budget 25 MB)'."""
    text = f"showing {len(shown.probe):,} of {shown.probe_total:,} probe points"
    if shown.test is not None and len(shown.test) < shown.test_total:
        text += f" and {len(shown.test):,} of {shown.test_total:,} test points"
    return f"{text} (size budget {budget_mb:g} MB)"


def subsample(content: ReportContent, keep: int) -> ReportContent:
    """`keep` probe points chosen class by class in proportion (seeded); the test points in the same share."""
    share = keep / max(len(content.probe), 1)
    probe = content.probe.take(stratified_rows(content.probe.labels, keep, content.seed))
    test = content.test
    if test is not None and share < 1:
        test = test.take(stratified_rows(test.labels, max(1, round(len(test) * share)), content.seed + 1))
    return dataclasses.replace(content, probe=probe, test=test)

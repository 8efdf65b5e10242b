"""Where layerlapse keeps its caches (downloaded datasets, numba's compiled code)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$XDG_CACHE_HOME/layerlapse, or ~/.cache/layerlapse (the XDG spec says to ignore a relative XDG_CACHE_HOME)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "layerlapse"

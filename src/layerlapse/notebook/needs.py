"""What the notebook display needs beyond the core: anywidget and pandas (the `notebook` extra), imported only
here and in the modules that draw or tabulate, a missing one a one-line error with the install hint."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..errors import LayerlapseError

INSTALL_HINT = 'pip install "layerlapse[notebook]"'


class NotebookError(LayerlapseError, ImportError):
    """The notebook display needs a package that is not installed (anywidget, pandas), or a notebook."""


def require(name: str) -> Any:
    """Import one of the notebook extra's packages, or raise the one-line NotebookError with the install hint."""
    try:
        return import_module(name)
    except ImportError:
        raise NotebookError(f"the notebook display needs {name}, which is not installed: {INSTALL_HINT}") from None

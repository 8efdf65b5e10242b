"""Callbacks for training frameworks, each a thin adapter over the one recording session
(`layerlapse.capture.session`): `layerlapse.integrations.lightning`, `.keras` and `.transformers`.

Each module imports its framework when it is imported itself, never before, and says how to install it when it is
missing (`pip install layerlapse[lightning]` and the like); the rest of layerlapse never needs these frameworks.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from ..errors import LayerlapseError


class IntegrationError(LayerlapseError, ImportError):
    """A framework layerlapse integrates with is missing, or of a version the callback does not support."""


def require(module: str, extra: str, minimum: tuple[int, ...], *, what: str | None = None,
            when_it_fails: str = "install what it names") -> ModuleType:
    """Import `module`, or raise a one-line IntegrationError with the install hint; refuse versions older than
    `minimum` (major, minor) with the version found. A framework that is installed but fails to import (a missing
    dependency of its own) is said to be so, with `when_it_fails` as the fix, not told to be installed again."""
    name = what or module
    try:
        imported = importlib.import_module(module)
    except ImportError as error:
        if importlib.util.find_spec(module) is not None:
            raise IntegrationError(f"{name} is installed but does not import ({error}): {when_it_fails}") from None
        raise IntegrationError(f"{name} is not installed ({error}): pip install 'layerlapse[{extra}]'") from None
    check_version(name, getattr(imported, "__version__", "0"), extra, minimum)
    return imported


def check_version(name: str, version: str, extra: str, minimum: tuple[int, ...], why: str = "") -> None:
    """A one-line IntegrationError for a framework older than its callback supports, with the upgrade command."""
    if _version_tuple(version) < minimum:
        raise IntegrationError(f"{name} {version} is too old for layerlapse's callback, which needs "
                               f"{'.'.join(map(str, minimum))} or later{why}: pip install -U 'layerlapse[{extra}]'")


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in str(version).split(".")[:3]:
        digits = "".join(char for char in part if char.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)

"""A Griffe extension for the API reference: the public names that layerlapse's packages re-export lazily.

`layerlapse/__init__.py` (and a subpackage such as `capture/`) keeps its import fast by importing a public name only
when it is first used: `_EXPORTS`, a dict of name -> module, read by a module-level `__getattr__`. Griffe reads
source without running it, so it cannot see those names; this extension reads the same dict from the source and adds
each name to its package as an alias of where it lives. The docs then write `layerlapse.Recorder` and follow the
name wherever the module that defines it moves. Nothing is imported: the build needs neither torch nor the training
frameworks.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe

PACKAGE = "layerlapse"


def lazy_exports(source: str) -> dict[str, str] | None:
    """Name -> module (relative to the package) from the `_EXPORTS = {...}` dict literal in `source`, if any."""
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and node.value is not None:
            exports = ast.literal_eval(node.value)
            if isinstance(exports, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in exports.items()):
                return exports
    return None


class LazyExports(griffe.Extension):
    """Adds `PACKAGE.NAME` as an alias of `PACKAGE.MODULE.NAME` for every name a package of layerlapse exports
    lazily."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path == PACKAGE:
            add_aliases(pkg)


def add_aliases(module: griffe.Module) -> None:
    exports = lazy_exports(module.filepath.read_text()) if module.is_init_module else None
    for name, where in (exports or {}).items():
        if name not in module.members:
            target = f"{module.path}.{where.lstrip('.')}.{name}"
            module.set_member(name, griffe.Alias(name, target, parent=module))
    for member in list(module.members.values()):
        if not member.is_alias and member.is_module:
            add_aliases(member)

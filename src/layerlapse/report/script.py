"""The page's code: the JavaScript files in js/, by concern, joined in a fixed order into the one inline script of
the page (`page_script`).

Two closures hold most of it: the point layer, `makePointLayer(options)`, and the report's behaviour,
`layerlapseShow(models, data, arrays, timings)`. Each is written as parts, one file each, which this module joins
inside the closure's function, so the parts share its constants, state and functions by scope as the one function
did. The order matters only for the parts' top-level statements (constants, state, listeners): each part's come
before the next part's, and start.js, which draws the page, comes last.
"""

from __future__ import annotations

from importlib import resources

# The point layer: its context first (WebGL or a 2-D canvas); the file that returns its interface last
POINT_LAYER_PARTS = ("pointlayer.js", "pointlayer_sets.js", "pointlayer_webgl.js", "pointlayer_cpu.js",
                     "pointlayer_queries.js")
# The page's entry, outside the closures: layerlapseStart reads the payload and its blobs, then calls layerlapseShow
ENTRY = "payload.js"
# The report's behaviour: the state every part reads first; the first draw last
REPORT_PARTS = ("state.js", "compare.js", "thumbnails.js", "maps.js", "panels.js", "selection.js", "find.js", "keep.js",
                "share.js", "looks.js", "time.js", "layout.js", "pointing.js", "testhook.js", "start.js")
# The live page's own code (`layerlapse watch`): outside the report, joined into the live page's shell (live.py)
LIVE = "live.js"
CONTRACT = "contract.js"  # the payload's and the hook's types: documentation, never joined into the page
INDENT = "  "  # each part is written unindented, and indented once inside its closure


def page_script() -> str:
    """The page's code: the point layer, the entry, then the report's behaviour."""
    return "\n".join([point_layer_script(), read_part(ENTRY),
                      closure("layerlapseShow(models, data, arrays, timings)", REPORT_PARTS)])


def point_layer_script() -> str:
    """The point layer alone, `makePointLayer(options)` (for a test that draws with it outside a report)."""
    return closure("makePointLayer(options)", POINT_LAYER_PARTS)


def closure(signature: str, parts: tuple[str, ...]) -> str:
    """`function signature { "use strict"; ...parts }`, each part's lines indented once (the shaders' template
    strings too: whitespace in GLSL is harmless)."""
    body = "\n".join(read_part(part) for part in parts)
    indented = "\n".join(INDENT + line if line else line for line in body.split("\n"))
    return f'function {signature} {{\n{INDENT}"use strict";\n{indented.rstrip()}\n}}\n'


def read_part(name: str) -> str:
    return resources.files(__package__).joinpath("js", name).read_text(encoding="utf-8")

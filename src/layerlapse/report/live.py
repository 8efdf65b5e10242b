"""The live page's parts (`layerlapse watch`): a shell page that stays open while a run records, and, for each new
state of the run, the same Bokeh document and payload the offline report holds, as JSON the shell draws in place
(js/live.js). One page, drawn by one code: the report's.

Torch is never imported here: a stored run folder is all the page needs.
"""

from __future__ import annotations

import html
import json

from ..config import REPORT_BUDGET_MB
from ..store.run import RunFolder
from .budget import MB, fit_to_budget
from .content import ReportContent, read_content
from .page import HEAD, check_settings, page_parts
from .script import LIVE, read_part
from .style import LIVE_BANNER_STYLE

# how often the open page asks for the run's state (a stat of the manifest on the server while nothing changed)
POLL_MS = 250


def live_parts(run: RunFolder, version: str, *, size_budget_mb: float = REPORT_BUDGET_MB) -> bytes:
    """The page for the run as it stands, as the JSON the live page draws: `{"version", "item", "data"}` (Bokeh's
    document as `json_item` gives it, and the payload's tags), within the report's size budget."""
    chosen = check_settings(run, size_budget_mb, None)
    content = read_content(run, chosen)
    text = fit_to_budget(content, int(size_budget_mb * MB), size_budget_mb, lambda shown: _parts(shown, version))
    return text.encode()


def _parts(content: ReportContent, version: str) -> str:
    """The page's Bokeh document as `bokeh.embed.json_item` gives it, serialised once (json_item would copy the
    document first, half again the time of building it), and its data tags."""
    import bokeh

    document, data_tags = page_parts(content)
    [root] = document.roots
    item = {"target_id": None, "root_id": root.id, "doc": document.to_json(deferred=False),
            "version": bokeh.__version__}
    return json.dumps({"version": version, "item": item, "data": data_tags}, allow_nan=False)


def shell_page(title: str, *, token: str | None, poll_ms: int = POLL_MS) -> str:
    """The page a browser opens: Bokeh's code inlined (no network request beyond the watch server), the banner, and
    the live code, which fetches the run's pages from the server."""
    from bokeh.resources import INLINE

    config = json.dumps({"poll": poll_ms, "token": token}).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{HEAD}
<link rel="icon" href="data:,">
<title>{html.escape(title)}</title>
{INLINE.render()}
<style>{LIVE_BANNER_STYLE}</style>
</head>
<body>
<div id="layerlapse-banner" data-kind="connecting">connecting to the watch server…</div>
<div id="layerlapse-data" hidden></div>
<div id="layerlapse-roots" style="position: relative"></div>
<script type="application/json" id="layerlapse-live-config">{config}</script>
<script>
{read_part(LIVE)}
layerlapseLive(JSON.parse(document.getElementById("layerlapse-live-config").textContent));
</script>
</body>
</html>
"""

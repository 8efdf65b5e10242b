"""The text demo's pictures in docs/images/: its layers over fine-tuning (the run's own figures/layers.png), its report
with a quotation hovered, and its run of tokens with a token hovered in its sentence, at a laptop's window size.

    layerlapse demo --text --out /tmp/text && python docs/screenshot_text.py /tmp/text
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = (1366, 768)
TOP = "bert.encoder.layer.3"  # the top block's [CLS]: where the topics come apart most visibly


def hover_the_loneliest(page, among: str) -> None:
    """Hover the point of `among` (a JS array expression of point indices) farthest from its nearest neighbour on
    the map: the mouse finds it, and its card does not hide a crowd."""
    page.evaluate(f"""(() => {{
      const chosen = {among};
      const at = chosen.map((i) => [i, window.layerlapse.clientPosition(i)]).filter(([, p]) => p && Number.isFinite(p.x) && Number.isFinite(p.y));
      let best = null, far = -1;
      for (const [i, p] of at) {{
        let near = Infinity;
        for (const [j, q] of at) if (j !== i) near = Math.min(near, Math.hypot(p.x - q.x, p.y - q.y));
        if (near > far) {{ far = near; best = p; }}
      }}
      window.__hoverAt = best;
    }})()""")
    where = page.evaluate("window.__hoverAt")
    page.mouse.move(where["x"] - 30, where["y"] - 30)
    page.mouse.move(where["x"], where["y"], steps=4)
    page.wait_for_selector("#layerlapse-tooltip", state="visible", timeout=5_000)


def shoot(browser, report: Path, out: Path, among: str) -> None:
    page = browser.new_page(viewport={"width": SIZE[0], "height": SIZE[1]})
    page.goto(report.as_uri())
    page.wait_for_function("window.layerlapse && window.layerlapse.ready", timeout=60_000)
    page.evaluate(f"window.layerlapse.setLayer({TOP!r}); window.layerlapse.setEpoch(window.layerlapse.snapshots() - 1)")
    page.wait_for_timeout(500)
    hover_the_loneliest(page, among)
    page.screenshot(path=str(out))
    page.close()


def readable_points(run: Path) -> str:
    """The points whose text has no unknown word (a quotation, or a token's sentence, a reader can follow), as a JS
    array."""
    from layerlapse import load_run

    texts = load_run(run).probe_texts()
    return str([i for i, text in enumerate(texts) if "[UNK]" not in text])


def main(run: Path) -> None:
    from playwright.sync_api import sync_playwright

    images = HERE / "images"
    shutil.copyfile(run / "figures" / "layers.png", images / "text_layers.png")
    tokens = run.with_name(f"{run.name}-tokens")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                         args=["--no-sandbox", "--use-angle=swiftshader",
                                               "--enable-unsafe-swiftshader"])
        try:
            for folder, name in ((run, "text_report.png"), (tokens, "text_tokens.png")):
                shoot(browser, folder / "report.html", images / name, readable_points(folder))
        finally:
            browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/text"))

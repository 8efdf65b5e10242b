"""The notebook widget's screenshot in docs/images/: `layerlapse.show(run)` in a real JupyterLab (started on
127.0.0.1 as bench/widget_speed.py starts it) in headless Chromium, at a laptop's window size, with a box selection
read back as a table in the next cell.

    python docs/screenshot_notebook.py RUN
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))

from widget_speed import start_jupyterlab  # noqa: E402 - the bench's JupyterLab, its folders in a temporary one

WIDGET = "document.querySelector('.layerlapse-widget').layerlapse"  # the widget view's hook


def run_cell(page, index: int) -> None:
    page.evaluate(f"window.jupyterapp.shell.currentWidget.content.activeCellIndex = {index}")
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")


def write_notebook(root: Path, run: Path) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import layerlapse\nw = layerlapse.show({str(run)!r})\nw"),
        nbformat.v4.new_code_cell("w.selection().head()")],
        metadata={"kernelspec": {"name": "layerlapse-bench", "display_name": "layerlapse", "language": "python"}})
    nbformat.write(notebook, root / "lapse.ipynb")


def main(run: Path) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        root = folder / "root"
        root.mkdir()
        write_notebook(root, run.resolve())
        server, url, token = start_jupyterlab(folder / "jupyter", root)
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                                 args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1366, "height": 768})
                page.goto(f"{url}/lab/tree/lapse.ipynb?token={token}")
                page.wait_for_function("window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                                       "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                                       "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
                                       timeout=120_000)
                run_cell(page, 0)
                page.wait_for_function(f"document.querySelector('.layerlapse-widget') && {WIDGET}.ready",
                                       timeout=120_000)
                page.wait_for_timeout(1000)
                box = page.evaluate(f"{WIDGET}.mapBox()")  # a box dragged over the map's upper right
                page.mouse.move(box["left"] + box["width"] * 0.55, box["top"] + box["height"] * 0.1)
                page.mouse.down()
                page.mouse.move(box["left"] + box["width"] * 0.95, box["top"] + box["height"] * 0.45, steps=8)
                page.mouse.up()
                page.wait_for_timeout(1000)
                run_cell(page, 1)
                page.wait_for_selector("text=mean_confidence", timeout=60_000)
                # the room for the notebook: no file browser, no news prompt; the table's end in view
                page.evaluate("window.jupyterapp.commands.execute('application:toggle-left-area')")
                for button in page.locator(".jp-toast-button", has_text="No").all():
                    button.click()
                page.locator("text=mean_confidence").scroll_into_view_if_needed()
                page.mouse.wheel(0, 160)
                page.wait_for_timeout(1000)
                page.screenshot(path=str(HERE / "images" / "notebook.png"))
                browser.close()
        finally:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main(Path(sys.argv[1]))

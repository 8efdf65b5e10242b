"""The comparison page's screenshots in docs/images/: the runs of docs/compare.md's own examples (run here as
written, in a temporary folder), compared, at a laptop's window size.

    python docs/screenshot_compare.py
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = (1366, 768)


def run_the_examples(folder: Path) -> None:
    for code in re.findall(r"```python\n(.*?)```", (HERE / "compare.md").read_text(), flags=re.DOTALL):
        subprocess.run([sys.executable, "-c", code], cwd=folder, check=True)


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as temp, sync_playwright() as driver:
        folder = Path(temp)
        run_the_examples(folder)
        browser = driver.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                         args=["--no-sandbox", "--use-angle=swiftshader",
                                               "--enable-unsafe-swiftshader"])
        try:
            shots = (("compare_seeds.png", "compare-seeds", "window.layerlapse.pin(1)"),
                     ("compare_architectures.png", "compare-architectures",
                      "window.layerlapse.setColorBy('overlap')"))
            for name, comparison, action in shots:
                page = browser.new_page(viewport={"width": SIZE[0], "height": SIZE[1]})
                page.goto((folder / "runs" / comparison / "report.html").as_uri())
                page.wait_for_function("window.layerlapseReady === true", timeout=60_000)
                page.evaluate(action)
                page.wait_for_timeout(700)
                page.screenshot(path=str(HERE / "images" / name))
                page.close()
        finally:
            browser.close()


if __name__ == "__main__":
    main()

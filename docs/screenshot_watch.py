"""The live page's screenshots in docs/images/: a run recorded by a Recorder (digits, the MLP of bench/watch_speed.py)
shown by `layerlapse watch` while it trains, at a laptop's window size and at a desktop's.

    python docs/screenshot_watch.py
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))

from watch_speed import child  # noqa: E402 - the bench's recording, gated


def main() -> None:
    from playwright.sync_api import sync_playwright

    from layerlapse.watch.server import WatchServer, settings_for

    with tempfile.TemporaryDirectory() as temp, sync_playwright() as driver:
        out, gate = Path(temp) / "run", Path(temp) / "gate"
        gate.mkdir()
        server = WatchServer(settings_for(out, "127.0.0.1", 0, None)).start()
        process = child(out, str(gate), 12, 1000, 1)
        browser = driver.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                         args=["--no-sandbox", "--use-angle=swiftshader",
                                               "--enable-unsafe-swiftshader"])
        try:
            for epoch in range(1, 6):
                (gate / str(epoch)).touch()
            for name, size in (("watch.png", (1366, 768)), ("watch_1920x1080.png", (1920, 1080))):
                page = browser.new_page(viewport={"width": size[0], "height": size[1]})
                page.goto(server.url)
                page.wait_for_function("window.layerlapseLive.snapshots() >= 5", timeout=600_000)
                page.wait_for_timeout(500)
                page.screenshot(path=str(HERE / "images" / name))
                page.close()
        finally:
            browser.close()
            process.kill()
            server.stop()


if __name__ == "__main__":
    main()

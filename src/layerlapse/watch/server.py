"""The watch server: Tornado (Bokeh's own server library) over one run folder.

Routes, and nothing else: `/` the live page (report/live.py), `/api/state` where the run is, `/api/page` the page's
parts for its newest state, and `/files/<name>` for the few finished files a run offers for download (its report and
lapse), looked up by name in a fixed table: no path from a request is ever used as a path, no folder is listed, no
link is followed (RunFolder.local refuses one). It binds 127.0.0.1 unless told otherwise; bound to another host it
asks every request for a token, as Jupyter does; bound to loopback it answers only requests addressed to a loopback
name, so a web page elsewhere cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import ipaddress
import json
import secrets
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import REPORT_BUDGET_MB
from ..errors import ConfigError, RunFolderError
from ..report.live import POLL_MS, shell_page
from ..store import layout
from ..store.run import RunFolder
from .run_state import WatchedRun, check_watchable

LOOPBACK = "127.0.0.1"
# What a finished run offers for download: the URL's name -> the run folder's own relative path (layout)
DOWNLOADS = {"report.html": layout.REPORT, "lapse.gif": "lapse.gif", "lapse.mp4": "lapse.mp4"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".gif": "image/gif", ".mp4": "video/mp4"}
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class WatchSettings:
    path: Path
    host: str = LOOPBACK
    port: int = 8765
    token: str | None = None  # None on loopback: no token; elsewhere one is made when not given
    poll_ms: int = POLL_MS
    size_budget_mb: float = REPORT_BUDGET_MB


def settings_for(path: Path, host: str, port: int, token: str | None, poll_ms: int = POLL_MS,
                 size_budget_mb: float = REPORT_BUDGET_MB) -> WatchSettings:
    """The server's settings, checked: a one-line ConfigError for a path that is no run folder, a port out of range,
    or an empty token."""
    check_watchable(path)
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535 (0: any free port), got {port}")
    if token is not None and not token.strip():
        raise ConfigError("--token is empty: give a token, or leave it out to have one made")
    if poll_ms < 100:
        raise ConfigError(f"the poll interval must be at least 100 ms, got {poll_ms}")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)  # reachable from elsewhere: never without a token
    return WatchSettings(Path(path), host, port, token, poll_ms, size_budget_mb)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(settings: WatchSettings) -> list[socket.socket]:
    """The listening sockets, or a one-line ConfigError when the port is taken or the host is not this machine's."""
    from tornado.netutil import bind_sockets

    try:
        return bind_sockets(settings.port, settings.host, family=socket.AF_INET if settings.host == LOOPBACK
                            else socket.AF_UNSPEC)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {settings.port} on {settings.host} is already in use: choose another with "
                              "--port, or --port 0 for a free one") from None
        if error.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(error, socket.gaierror):
            raise ConfigError(f"cannot listen on {settings.host} ({error.strerror or error}): give --host an "
                              "address of this machine (127.0.0.1, or 0.0.0.0 for every one)") from None
        raise


def url_of(settings: WatchSettings, sockets: list[socket.socket]) -> str:
    port = sockets[0].getsockname()[1]
    host = settings.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
    query = f"?token={settings.token}" if settings.token else ""
    return f"http://{shown}:{port}/{query}"


def make_app(settings: WatchSettings, watched: WatchedRun, executor: ThreadPoolExecutor) -> Any:
    import tornado.web

    class Handler(tornado.web.RequestHandler):
        SUPPORTED_METHODS = ("GET", "HEAD")

        def prepare(self) -> None:
            if is_loopback(settings.host) and _host_name(self.request.host) not in LOOPBACK_NAMES:
                raise tornado.web.HTTPError(403, reason="Host not allowed")
            if settings.token is not None:
                given = self.get_query_argument("token", "") or _header_token(self.request.headers)
                if not hmac.compare_digest(given.encode(), settings.token.encode()):
                    raise tornado.web.HTTPError(403, reason="Missing or wrong token")

        def set_default_headers(self) -> None:
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Referrer-Policy", "no-referrer")  # the token is in the address
            self.set_header("X-Frame-Options", "DENY")

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"{status_code} {self._reason}\n")  # never a traceback

    class Shell(Handler):
        def get(self) -> None:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(shell_page(f"layerlapse watch · {settings.path.name}", token=settings.token,
                                   poll_ms=settings.poll_ms))

    making: list[asyncio.Future] = []  # the page being made ahead of the browsers' asking for it

    class State(Handler):
        async def get(self) -> None:
            loop = asyncio.get_running_loop()
            state = await loop.run_in_executor(executor, watched.state)
            if state.version is not None and state.version != watched.page_version and not (
                    making and not making[0].done()):
                making[:] = [loop.run_in_executor(executor, watched.page)]  # ready when a browser next looks
            self.set_header("Content-Type", "application/json")
            # "page": the version of the page made: a browser loads it when it is not the one it shows
            self.finish(json.dumps({**state.as_json(), "page": watched.page_version}))

    class Page(Handler):
        async def get(self) -> None:
            page = await asyncio.get_running_loop().run_in_executor(executor, watched.page)
            if page is None:
                raise tornado.web.HTTPError(404, reason="Nothing to draw yet")
            self.set_header("Content-Type", "application/json")
            self.finish(page[1])

    class Download(Handler):
        async def get(self, name: str) -> None:
            relpath = DOWNLOADS.get(name)
            if relpath is None:
                raise tornado.web.HTTPError(404)
            data = await asyncio.get_running_loop().run_in_executor(executor, _download, settings.path, relpath)
            if data is None:
                raise tornado.web.HTTPError(404, reason="Not written yet")
            self.set_header("Content-Type", CONTENT_TYPES[Path(relpath).suffix])
            self.finish(data)

    class NotFound(Handler):
        def prepare(self) -> None:
            raise tornado.web.HTTPError(404)

    return tornado.web.Application([(r"/", Shell), (r"/api/state", State), (r"/api/page", Page),
                                    (r"/files/([a-z0-9.]+)", Download)], default_handler_class=NotFound,
                                   compress_response=True)


def _host_name(host_header: str) -> str:
    """The name in a Host header, without its port: "localhost:8765" -> "localhost", "[::1]:80" -> "::1"."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


def _header_token(headers: Any) -> str:
    auth = headers.get("Authorization", "")
    return auth[len("token "):] if auth.startswith("token ") else ""


def _download(path: Path, relpath: str) -> bytes | None:
    """A finished file the run lists, read through its layout (a link is refused), or None."""
    import os

    try:
        file = RunFolder.open(path, verify=False).local(relpath)
        # O_NOFOLLOW: a link put in its place after the check is refused too
        descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(descriptor, "rb") as opened:
            return opened.read()
    except (RunFolderError, OSError):
        return None


class WatchServer:
    """The server over one run folder: `start()` in a thread of its own (tests, notebooks), `serve_forever()` in
    this one (the command line). `url` is known once bound."""

    def __init__(self, settings: WatchSettings) -> None:
        self.settings = settings
        self.watched = WatchedRun(settings.path, size_budget_mb=settings.size_budget_mb)
        self.sockets = bind(settings)
        self.url = url_of(settings, self.sockets)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def serve_forever(self, on_listening: Callable[[], None] | None = None) -> None:
        asyncio.run(self._serve(on_listening))

    def start(self) -> WatchServer:
        started = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(started.set,), daemon=True,
                                        name="layerlapse-watch")
        self._thread.start()
        started.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _serve(self, on_listening: Callable[[], None] | None) -> None:
        from tornado.httpserver import HTTPServer

        self._loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="layerlapse-watch-read") as executor:
            server = HTTPServer(make_app(self.settings, self.watched, executor), xheaders=False,
                                max_header_size=16 * 1024, max_body_size=1024)
            server.add_sockets(self.sockets)
            if on_listening is not None:
                on_listening()
            try:
                while not self._stopped.is_set():
                    await asyncio.sleep(0.1)
            finally:
                server.stop()
                await server.close_all_connections()


def watch_run(run: str | Path, *, port: int = 0, host: str = LOOPBACK, token: str | None = None,
              size_budget_mb: float = REPORT_BUDGET_MB) -> WatchServer:
    """Serve a run's report page live from Python (a notebook, a script that trains): the server runs in a thread of
    its own until `stop()`; `url` is the address to open. What `layerlapse watch` does, without taking the terminal.

    Parameters
    ----------
    run
        The run folder: recording, finished, or not started yet (the page then waits for it).
    port
        The port; 0 (the default here) picks a free one.
    host
        The address to listen on; another than 127.0.0.1 makes every request need the token.
    token
        The token the address carries; default none on loopback, a new random one on any other host.
    size_budget_mb
        Each page's size budget, as `write_report`'s.

    Returns
    -------
    WatchServer
        The running server: `url`, `stop()`.

    Raises
    ------
    ConfigError
        For a path that is no run folder, a port in use or out of range, or an empty token.

    Examples
    --------
    >>> from layerlapse import watch_run
    >>> server = watch_run("runs/mlp")  # doctest: +SKIP
    >>> server.url  # doctest: +SKIP
    'http://127.0.0.1:41263/'
    >>> server.stop()  # doctest: +SKIP
    """
    return WatchServer(settings_for(Path(run), host, port, token, size_budget_mb=size_budget_mb)).start()

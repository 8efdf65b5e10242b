"""The watch server over real run folders, through real HTTP on loopback: what it serves, what it refuses, and that it
never writes to the run or takes its lock."""

from __future__ import annotations

import json
import shutil
import socket
import stat
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from layerlapse import RunConfig
from layerlapse.errors import ConfigError
from layerlapse.store.run import RunFolder
from layerlapse.watch.run_state import WatchedRun
from layerlapse.watch.server import WatchServer, settings_for

from run_helpers import recorded_and_drawn


@pytest.fixture(scope="module")
def run_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = RunConfig(dataset="digits", epochs=2, layers=("hidden",), probe=120, test_probe=30, map_method="pca",
                       train_subset=300)
    return recorded_and_drawn(config, tmp_path_factory.mktemp("watch") / "run").path


@pytest.fixture
def server(run_path: Path) -> Iterator[WatchServer]:
    started = WatchServer(settings_for(run_path, "127.0.0.1", 0, None)).start()
    yield started
    started.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def raw(server: WatchServer, request: bytes) -> bytes:
    """What the server answers to bytes sent as they are (no client library tidying the path)."""
    host, port = server.sockets[0].getsockname()[:2]
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_the_server_binds_loopback_and_serves_the_live_page_state_and_parts(server: WatchServer) -> None:
    assert server.url.startswith("http://127.0.0.1:") and "token" not in server.url
    status, page = get(server.url)
    assert status == 200 and b"layerlapseLive(" in page and b"<script src=" not in page  # Bokeh inlined
    assert b'<meta name="viewport" content="width=device-width, initial-scale=1">' in page  # as the report's
    assert b'<meta name="color-scheme" content="light dark">' in page  # dark where the system is, as the report
    status, body = get(server.url + "api/state")
    state = json.loads(body)
    assert status == 200 and state["status"] == "complete" and state["snapshots"] == 3
    assert state["banner"] == "complete: 3 snapshots"
    status, body = get(server.url + "api/page")
    parts = json.loads(body)
    assert parts["version"] == state["version"] and parts["item"]["doc"]["roots"]
    assert 'id="layerlapse-payload"' in parts["data"]


@pytest.mark.parametrize("path", ["../manifest.json", "%2e%2e/manifest.json", "files/..%2fmanifest.json",
                                  "files/manifest.json", "files/probe", "probe/labels.npy", "manifest.json",
                                  "api/../manifest.json", "maps/", "files/", "//etc/passwd"])
def test_no_path_from_a_request_reaches_a_file(server: WatchServer, path: str) -> None:
    answer = raw(server, f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    assert answer.split(b"\r\n", 1)[0] in (b"HTTP/1.1 404 Not Found", b"HTTP/1.1 400 Bad Request")
    assert b"layerlapse run folder" not in answer and b"Traceback" not in answer


def test_a_malformed_request_is_an_http_error_not_a_traceback(server: WatchServer) -> None:
    for request in (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"GET\r\n\r\n", b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"):
        answer = raw(server, request)
        assert answer == b"" or answer.startswith((b"HTTP/1.1 4", b"HTTP/1.0 4")), answer[:80]
        assert b"Traceback" not in answer
    assert get(server.url + "api/state")[0] == 200  # still serving


def test_only_finished_files_the_layout_names_are_downloads(server: WatchServer, run_path: Path) -> None:
    status, body = get(server.url + "files/report.html")
    assert status == 200 and body == (run_path / "report.html").read_bytes()
    assert get(server.url + "files/lapse.gif")[0] == 200
    assert get(server.url + "files/secret.txt")[0] == 404


def test_a_link_in_the_run_folder_is_never_followed(run_path: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run_path, tmp_path / "run"))
    (tmp_path / "outside.html").write_text("outside the run")
    (copy / "report.html").unlink()
    (copy / "report.html").symlink_to(tmp_path / "outside.html")
    with_link = WatchServer(settings_for(copy, "127.0.0.1", 0, None)).start()
    try:
        status, body = get(with_link.url + "files/report.html")
        assert status == 404 and b"outside" not in body
    finally:
        with_link.stop()


def test_a_request_for_another_host_name_is_refused_on_loopback(server: WatchServer) -> None:
    """A web page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing."""
    assert get(server.url + "api/state", {"Host": "evil.example:80"})[0] == 403
    assert get(server.url + "api/state", {"Host": "localhost:1234"})[0] == 200  # an SSH tunnel's other port


def test_another_host_needs_the_token_in_every_request(run_path: Path) -> None:
    settings = settings_for(run_path, "0.0.0.0", 0, None)
    assert settings.token and len(settings.token) >= 24
    served = WatchServer(settings).start()
    try:
        port = served.sockets[0].getsockname()[1]
        bare = f"http://127.0.0.1:{port}/"
        assert served.url == f"{bare}?token={settings.token}"
        assert get(bare)[0] == 403 and get(bare + "api/page")[0] == 403
        assert get(bare + "api/state?token=wrong")[0] == 403
        assert get(served.url)[0] == 200
        assert get(bare + f"api/state?token={settings.token}")[0] == 200
        assert get(bare + "api/state", {"Authorization": f"token {settings.token}"})[0] == 200
        assert f'"token": "{settings.token}"'.encode() in get(served.url)[1]  # the page asks with it
    finally:
        served.stop()


def test_a_port_in_use_is_one_clear_line(run_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"^port {port} on 127.0.0.1 is already in use: choose another with "
                                              r"--port, or --port 0 for a free one$"):
            WatchServer(settings_for(run_path, "127.0.0.1", port, None))


@pytest.mark.parametrize("make, message", [
    (lambda tmp: (tmp / "a-file.txt").write_text("x") and tmp / "a-file.txt",
     r"a-file.txt is a file, not a run folder: pass the folder a run writes to \(its --out\)$"),
    (lambda tmp: (tmp / "stuff").mkdir() or (tmp / "stuff" / "notes.txt").write_text("x") and tmp / "stuff",
     r"stuff holds no layerlapse run \(no manifest.json\): pass the folder a run writes to \(its --out\), or a new "
     "folder to wait for a run there$"),
])
def test_a_path_that_is_no_run_folder_is_one_clear_line(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_for(make(tmp_path), "127.0.0.1", 0, None)


def test_bad_settings_are_one_clear_line(run_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--port must be between 0 and 65535 \(0: any free port\), got 70000$"):
        settings_for(run_path, "127.0.0.1", 70000, None)
    with pytest.raises(ConfigError, match=r"^--token is empty: give a token, or leave it out to have one made$"):
        settings_for(run_path, "0.0.0.0", 0, " ")
    with pytest.raises(ConfigError, match=r"^cannot listen on 192.0.2.1 .*: give --host an address of this machine"):
        WatchServer(settings_for(run_path, "192.0.2.1", 0, None))


def test_a_run_not_started_is_waited_for_and_a_deleted_one_is_said_to_be_gone(run_path: Path, tmp_path: Path) -> None:
    later = tmp_path / "later"
    watched = WatchedRun(later)
    assert watched.state().status == "waiting" and watched.state().banner == f"waiting for a run to start in {later}"
    assert watched.page() is None
    shutil.copytree(run_path, later)
    assert watched.state().status == "complete"
    page = watched.page()
    assert page is not None
    shutil.rmtree(later)
    gone = watched.state()
    assert gone.status == "gone" and gone.banner == (f"the run folder {later} is gone (deleted or moved); waiting "
                                                     "for a run to appear there")
    assert watched.page() == page  # the last page stays shown


def test_the_watcher_never_writes_to_the_run_nor_takes_its_lock(run_path: Path, tmp_path: Path) -> None:
    """A read-only copy of the run, watched and paged: works, and nothing in it changes."""
    copy = Path(shutil.copytree(run_path, tmp_path / "run"))
    before = {path: path.stat().st_mtime_ns for path in copy.rglob("*")}
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        served = WatchServer(settings_for(copy, "127.0.0.1", 0, None)).start()
        try:
            assert json.loads(get(served.url + "api/state")[1])["status"] == "complete"
            assert get(served.url + "api/page")[0] == 200
        finally:
            served.stop()
        assert {path: path.stat().st_mtime_ns for path in copy.rglob("*")} == before
    finally:
        for path in [copy, *copy.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_a_writer_takes_the_lock_while_the_run_is_watched(run_path: Path, tmp_path: Path) -> None:
    """The watcher never holds the run's lock: a writer takes it before, during and after the watch."""
    copy = Path(shutil.copytree(run_path, tmp_path / "run"))
    served = WatchServer(settings_for(copy, "127.0.0.1", 0, None)).start()
    try:
        writer = RunFolder.open_for_writing(copy)  # would raise if anyone else held the lock
        try:
            assert get(served.url + "api/page")[0] == 200 and get(served.url + "api/state")[0] == 200
        finally:
            writer.close()
        RunFolder.open_for_writing(copy).close()
    finally:
        served.stop()


def test_the_banner_says_where_the_run_is(run_path: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(run_path, tmp_path / "run"))
    watched = WatchedRun(copy)
    assert watched.state().banner == "complete: 3 snapshots"
    for status, banner in (("interrupted", "interrupted at snapshot 3 of 3: continue it with --resume"),
                           ("failed", "failed at snapshot 3 of 3"), ("running", "training: snapshot 3 of 3, last ")):
        writer = RunFolder.open_for_writing(copy)
        writer.commit(status)
        writer.close()
        state = watched.state()
        assert state.status == status and state.banner.startswith(banner), state.banner
    assert watched.state().banner.endswith(" s ago")


def test_a_page_is_made_once_per_version_and_not_again_within_its_rest(run_path: Path, tmp_path: Path) -> None:
    """However fast a run commits, the watcher makes pages with rests between them (`rest`: twice the processor time
    the last took, at least half a second); every browser shares the page made."""
    from layerlapse.watch.run_state import MIN_REST_S, rest

    copy = Path(shutil.copytree(run_path, tmp_path / "run"))
    watched = WatchedRun(copy)
    first = watched.page()
    assert first is not None and watched.page() is first  # one page per version
    writer = RunFolder.open_for_writing(copy)
    writer.commit("interrupted")  # the page would change: its status
    writer.close()
    assert watched.state().version != first[0]
    assert watched.page() is first  # within the rest: the page made last
    time.sleep(rest(watched.making_s))
    second = watched.page()
    assert second[0] == watched.state().version != first[0]
    assert rest(0.01) == MIN_REST_S and rest(2.0) == 4.0


def test_a_page_the_budget_cannot_hold_is_said_on_the_banner(run_path: Path) -> None:
    watched = WatchedRun(run_path, size_budget_mb=0.001)
    assert watched.page() is None
    banner = watched.state().banner
    assert banner.startswith("complete: 3 snapshots · the page cannot be made: size_budget_mb=0.001 is too small "
                             "for this run"), banner

"""Fetching goldens over real HTTP (a local server on 127.0.0.1) and from a local folder."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pytest_ckpt_compat.core.errors import GoldenError, HashMismatch
from pytest_ckpt_compat.goldens.registry import read_registry
from pytest_ckpt_compat.goldens.store import GoldenStore, resolve_cache, resolve_source

PAYLOADS = {"1.0.0/end_of_fit.ckpt": b"golden-one" * 1000, "2.0.0/mid_epoch.ckpt": os.urandom(200_000)}


def _write_golden_dir(root: Path, payloads: dict[str, bytes]) -> Path:
    lines = []
    for name, data in sorted(payloads.items()):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
        lines.append(f"{name} sha256:{hashlib.sha256(data).hexdigest()}")
    (root / "registry.txt").write_text("# name hash\n" + "\n".join(lines) + "\n")
    return root


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 that counts GETs and can misbehave on request."""

    def __init__(self, directory: Path):
        self.requests: list[str] = []
        self.truncate: set[str] = set()
        self.trickle: set[str] = set()  # a byte at a time, for ever (Content-Length says 1 MB)
        self.endless: set[str] = set()  # a fast body that never ends (no Content-Length)
        self.delay = 0.0
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                outer.requests.append(self.path)
                time.sleep(outer.delay)
                if self.path.lstrip("/") in outer.trickle | outer.endless:
                    trickle = self.path.lstrip("/") in outer.trickle
                    self.send_response(200)
                    if trickle:
                        self.send_header("Content-Length", str(1_000_000))
                    self.end_headers()
                    try:
                        while not outer.stopped.is_set():
                            self.wfile.write(b"x" if trickle else b"x" * 65536)
                            self.wfile.flush()
                            if trickle:
                                outer.stopped.wait(0.01)
                    except OSError:  # the client gave up: what the test wants
                        pass
                    self.close_connection = True
                    return
                if self.path.lstrip("/") in outer.truncate:
                    body = b"only part of the file"
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body) * 10))
                    self.end_headers()
                    self.wfile.write(body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        self.stopped = threading.Event()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def golden_dir(tmp_path):
    return _write_golden_dir(tmp_path / "served", PAYLOADS)


@pytest.fixture
def server(golden_dir):
    srv = _Server(golden_dir)
    yield srv
    srv.stop()


def _store(server_or_folder, tmp_path, golden_dir, **kw):
    source = server_or_folder.url if isinstance(server_or_folder, _Server) else server_or_folder
    return GoldenStore(source, tmp_path / "cache", registry_dir=golden_dir, **kw)


def test_registry_and_ids(golden_dir, tmp_path):
    """Entries come out oldest release first, with ids usable in -k."""
    store = _store(golden_dir, tmp_path, golden_dir)
    assert [g.id for g in store.goldens] == ["1.0.0-end_of_fit", "2.0.0-mid_epoch"]
    assert (
        read_registry(golden_dir)["1.0.0/end_of_fit.ckpt"]
        == "sha256:" + hashlib.sha256(PAYLOADS["1.0.0/end_of_fit.ckpt"]).hexdigest()
    )


def test_cold_then_warm_cache_offline(server, golden_dir, tmp_path):
    """First fetch downloads once; with the server gone the verified copy is still served."""
    store = _store(server, tmp_path, golden_dir)
    path = store.fetch("1.0.0/end_of_fit.ckpt")
    assert path == tmp_path / "cache" / "1.0.0" / "end_of_fit.ckpt"
    assert path.read_bytes() == PAYLOADS["1.0.0/end_of_fit.ckpt"]
    assert server.requests == ["/1.0.0/end_of_fit.ckpt"]
    server.stop()
    fresh = _store(server, tmp_path, golden_dir)  # a new process would re-verify the hash
    assert fresh.fetch("1.0.0/end_of_fit.ckpt").read_bytes() == PAYLOADS["1.0.0/end_of_fit.ckpt"]
    with pytest.raises(GoldenError, match="2.0.0/mid_epoch.ckpt"):
        fresh.fetch("2.0.0/mid_epoch.ckpt")  # not cached and offline


def test_corrupted_file_is_refused_and_not_cached(server, golden_dir, tmp_path):
    (golden_dir / "2.0.0" / "mid_epoch.ckpt").write_bytes(b"tampered")
    store = _store(server, tmp_path, golden_dir)
    with pytest.raises(HashMismatch, match=r"golden 2\.0\.0/mid_epoch\.ckpt .* does not have the registry's sha256"):
        store.fetch("2.0.0/mid_epoch.ckpt")
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert cached == []


def test_corrupted_cache_entry_is_replaced(server, golden_dir, tmp_path):
    store = _store(server, tmp_path, golden_dir)
    path = store.fetch("1.0.0/end_of_fit.ckpt")
    path.write_bytes(b"bit rot")
    assert (
        _store(server, tmp_path, golden_dir).fetch("1.0.0/end_of_fit.ckpt").read_bytes()
        == PAYLOADS["1.0.0/end_of_fit.ckpt"]
    )
    assert len(server.requests) == 2


def test_404_names_the_url(server, golden_dir, tmp_path):
    (golden_dir / "1.0.0" / "end_of_fit.ckpt").unlink()
    with pytest.raises(GoldenError, match=r"404.*1\.0\.0/end_of_fit\.ckpt|1\.0\.0/end_of_fit\.ckpt.*404"):
        _store(server, tmp_path, golden_dir).fetch("1.0.0/end_of_fit.ckpt")
    assert not (tmp_path / "cache" / "1.0.0" / "end_of_fit.ckpt").exists()


def test_truncated_transfer(server, golden_dir, tmp_path):
    server.truncate.add("2.0.0/mid_epoch.ckpt")
    with pytest.raises(GoldenError, match=r"cannot fetch golden 2\.0\.0/mid_epoch\.ckpt"):
        _store(server, tmp_path, golden_dir).fetch("2.0.0/mid_epoch.ckpt")
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert leftovers == []


def test_endless_trickle_stops_at_the_overall_deadline(server, golden_dir, tmp_path):
    """A server that sends a byte every 10 ms for ever: pooch's per-read timeout never fires; the deadline does.

    Not timing-fragile: the body never ends, so the only way out is the deadline (0.5 s here).
    """
    server.trickle.add("2.0.0/mid_epoch.ckpt")
    store = _store(server, tmp_path, golden_dir, deadline=0.5)
    with pytest.raises(GoldenError, match=r"did not finish within 0\.5 s .* CKPT_COMPAT_FETCH_DEADLINE"):
        store.fetch("2.0.0/mid_epoch.ckpt")
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert leftovers == []


def test_endless_body_stops_at_the_size_cap(server, golden_dir, tmp_path):
    """A fast body without end and without Content-Length: cut off past the cap, nothing cached."""
    server.endless.add("2.0.0/mid_epoch.ckpt")
    store = _store(server, tmp_path, golden_dir, max_bytes=300_000)
    with pytest.raises(GoldenError, match=r"exceeds 300000 bytes .* CKPT_COMPAT_FETCH_MAX_BYTES"):
        store.fetch("2.0.0/mid_epoch.ckpt")
    leftovers = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and ".locks" not in p.parts]
    assert leftovers == []


def test_deadline_and_cap_come_from_the_environment(monkeypatch, golden_dir, tmp_path):
    monkeypatch.setenv("CKPT_COMPAT_FETCH_DEADLINE", "2.5")
    monkeypatch.setenv("CKPT_COMPAT_FETCH_MAX_BYTES", "1000")
    store = _store(golden_dir, tmp_path, golden_dir)
    assert (store.deadline, store.max_bytes) == (2.5, 1000)
    monkeypatch.setenv("CKPT_COMPAT_FETCH_DEADLINE", "soon")
    with pytest.raises(GoldenError, match="CKPT_COMPAT_FETCH_DEADLINE='soon' must be a positive number"):
        _store(golden_dir, tmp_path, golden_dir)


def test_cache_folder_that_cannot_be_created_is_a_golden_error(golden_dir, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    store = GoldenStore(golden_dir, tmp_path / "a-file" / "cache")
    with pytest.raises(
        GoldenError, match=r"cannot create the golden cache folder .*a-file/cache: .*--ckpt-compat-cache"
    ):
        store.fetch("1.0.0/end_of_fit.ckpt")


def test_local_folder_mirror(golden_dir, tmp_path):
    """A folder works like a URL: hash-checked, cached, and the registry is read from it."""
    store = GoldenStore(golden_dir, tmp_path / "cache")
    assert store.registry_dir == golden_dir
    path = store.fetch("2.0.0/mid_epoch.ckpt")
    assert path.parent.parent == tmp_path / "cache" and path.read_bytes() == PAYLOADS["2.0.0/mid_epoch.ckpt"]
    (golden_dir / "1.0.0" / "end_of_fit.ckpt").write_bytes(b"tampered")
    with pytest.raises(HashMismatch, match=r"1\.0\.0/end_of_fit\.ckpt"):
        store.fetch("1.0.0/end_of_fit.ckpt")


def test_missing_in_local_folder(golden_dir, tmp_path):
    (golden_dir / "1.0.0" / "end_of_fit.ckpt").unlink()
    with pytest.raises(GoldenError, match=r"1\.0\.0/end_of_fit\.ckpt is missing from the source folder"):
        GoldenStore(golden_dir, tmp_path / "cache").fetch("1.0.0/end_of_fit.ckpt")


def test_concurrent_processes_download_once(server, golden_dir, tmp_path):
    """Four processes fetch the same entry at once: one GET, four identical verified files."""
    server.delay = 0.5
    script = textwrap.dedent(
        f"""
        import sys
        from pytest_ckpt_compat.goldens.store import GoldenStore
        store = GoldenStore({server.url!r}, {str(tmp_path / "cache")!r}, registry_dir={str(golden_dir)!r})
        print(store.fetch("2.0.0/mid_epoch.ckpt"))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outs]
    assert {out.strip() for out, _ in outs} == {str(tmp_path / "cache" / "2.0.0" / "mid_epoch.ckpt")}
    assert server.requests == ["/2.0.0/mid_epoch.ckpt"]


def test_source_and_cache_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("CKPT_COMPAT_URL", "https://example.invalid/goldens")
    monkeypatch.setenv("CKPT_COMPAT_CACHE", str(tmp_path / "env-cache"))
    assert resolve_source("http://127.0.0.1:1/x", "https://ini.invalid") == "http://127.0.0.1:1/x"
    assert resolve_source(None, "https://ini.invalid") == "https://example.invalid/goldens"
    assert resolve_cache(None, str(tmp_path / "ini")) == tmp_path / "env-cache"
    monkeypatch.delenv("CKPT_COMPAT_URL")
    monkeypatch.delenv("CKPT_COMPAT_CACHE")
    assert resolve_source(None, "https://ini.invalid") == "https://ini.invalid"
    assert resolve_cache(None, str(tmp_path / "ini")) == tmp_path / "ini"


def test_unknown_source_folder(tmp_path):
    with pytest.raises(GoldenError, match="neither an http"):
        GoldenStore(tmp_path / "nope", tmp_path / "cache")

"""Dataset lookup and verified download, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import pytest

from convcoach.data import fetch as fetch_mod
from convcoach.data.fetch import RemoteFile, download_verified, fetch, locate
from convcoach.errors import ConfigError

NAME = "convcoach-test-set"
PAYLOAD = b"fake dataset bytes\n" * 100
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def served(tmp_path):
    """(folder, base_url): files written to folder are served over HTTP."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """A private cache, no data dirs or mirror from the outside, and no proxy for 127.0.0.1."""
    monkeypatch.setenv("CONVCOACH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CONVCOACH_DATA", raising=False)
    monkeypatch.delenv("CONVCOACH_MIRROR", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".part")]


def present(folder: Path) -> bool:
    return (folder / "data.bin").is_file()


def make_set(base: Path, content: bytes = PAYLOAD) -> Path:
    folder = base / NAME
    folder.mkdir(parents=True)
    (folder / "data.bin").write_bytes(content)
    return folder


def test_download_verified_writes_the_content_and_leaves_no_part_file(served, tmp_path):
    folder, url = served
    (folder / "data.bin").write_bytes(PAYLOAD)
    out = tmp_path / "out"
    out.mkdir()
    download_verified(url + "data.bin", out / "data.bin", SHA)
    assert (out / "data.bin").read_bytes() == PAYLOAD
    assert part_files(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["data.bin"]


def test_sha_mismatch_raises_and_leaves_no_file(served, tmp_path):
    folder, url = served
    (folder / "data.bin").write_bytes(PAYLOAD)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ConfigError, match="SHA-256 mismatch") as info:
        download_verified(url + "data.bin", out / "data.bin", "0" * 64)
    assert f"got {SHA[:12]}" in str(info.value)
    assert list(out.iterdir()) == []


def test_sha_mismatch_keeps_an_existing_good_file_untouched(served, tmp_path):
    folder, url = served
    (folder / "data.bin").write_bytes(b"tampered")
    out = tmp_path / "out"
    out.mkdir()
    (out / "data.bin").write_bytes(PAYLOAD)
    with pytest.raises(ConfigError, match="SHA-256 mismatch"):
        download_verified(url + "data.bin", out / "data.bin", SHA)
    assert (out / "data.bin").read_bytes() == PAYLOAD
    assert part_files(out) == []


def test_http_404_raises_config_error_naming_url(served, tmp_path):
    _, url = served
    with pytest.raises(ConfigError, match="cannot download") as info:
        download_verified(url + "missing.bin", tmp_path / "missing.bin", SHA)
    assert url + "missing.bin" in str(info.value)
    assert part_files(tmp_path) == []


def test_fetch_downloads_every_remote_file(served, tmp_path, monkeypatch):
    folder, url = served
    (folder / "a.bin").write_bytes(b"first")
    (folder / "b.bin").write_bytes(b"second")
    remotes = [
        RemoteFile(n, url, hashlib.sha256(c).hexdigest()) for n, c in (("a.bin", b"first"), ("b.bin", b"second"))
    ]
    monkeypatch.setitem(fetch_mod.REMOTE, NAME, remotes)
    target = tmp_path / "target"
    fetch(NAME, target)
    assert (target / "a.bin").read_bytes() == b"first"
    assert (target / "b.bin").read_bytes() == b"second"
    assert part_files(target) == []


def test_fetch_uses_the_mirror_instead_of_the_official_url(served, tmp_path, monkeypatch):
    folder, url = served
    (folder / "data.bin").write_bytes(PAYLOAD)
    official = f"http://127.0.0.1:{unused_port()}/"  # nothing listens here
    monkeypatch.setitem(fetch_mod.REMOTE, NAME, [RemoteFile("data.bin", official, SHA)])
    monkeypatch.setenv("CONVCOACH_MIRROR", url.rstrip("/"))
    fetch(NAME, tmp_path / "target")
    assert (tmp_path / "target" / "data.bin").read_bytes() == PAYLOAD


def test_fetch_downloads_and_extracts_an_archive(served, tmp_path, monkeypatch):
    folder, url = served
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("set-batches/data.bin")
        info.size = len(PAYLOAD)
        tar.addfile(info, io.BytesIO(PAYLOAD))
    archive = buffer.getvalue()
    (folder / "set.tar.gz").write_bytes(archive)
    monkeypatch.setitem(
        fetch_mod.REMOTE, NAME, [RemoteFile("set.tar.gz", url, hashlib.sha256(archive).hexdigest(), "set-batches")]
    )
    target = tmp_path / "target"
    fetch(NAME, target)
    assert (target / "set-batches" / "data.bin").read_bytes() == PAYLOAD
    assert sorted(p.name for p in target.iterdir()) == ["set-batches", "set.tar.gz"]  # no staging folder left


def test_fetch_refuses_archive_members_outside_the_target(served, tmp_path, monkeypatch):
    folder, url = served
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("../../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    archive = buffer.getvalue()
    (folder / "evil.tar.gz").write_bytes(archive)
    monkeypatch.setitem(
        fetch_mod.REMOTE, NAME, [RemoteFile("evil.tar.gz", url, hashlib.sha256(archive).hexdigest(), "x")]
    )
    with pytest.raises(ConfigError, match="unsafe member '../../escaped.txt'"):
        fetch(NAME, tmp_path / "a" / "target")
    assert not (tmp_path / "escaped.txt").exists()


def test_locate_prefers_data_dir_over_env_over_cache(tmp_path, monkeypatch):
    data_dir, env_dir, cache = tmp_path / "cli", tmp_path / "env", tmp_path / "cache"
    monkeypatch.setenv("CONVCOACH_DATA", str(env_dir))
    from_cli, from_env, from_cache = make_set(data_dir), make_set(env_dir), make_set(cache)
    assert locate(NAME, str(data_dir), present, download=False) == from_cli
    assert locate(NAME, None, present, download=False) == from_env
    monkeypatch.delenv("CONVCOACH_DATA")
    assert locate(NAME, None, present, download=False) == from_cache


def test_locate_skips_a_data_dir_without_the_files(tmp_path, monkeypatch):
    (tmp_path / "cli" / NAME).mkdir(parents=True)  # folder exists but is empty
    env_set = make_set(tmp_path / "env")
    monkeypatch.setenv("CONVCOACH_DATA", str(tmp_path / "env"))
    assert locate(NAME, str(tmp_path / "cli"), present, download=False) == env_set


def test_locate_accepts_files_directly_in_data_dir(tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "data.bin").write_bytes(PAYLOAD)
    assert locate(NAME, str(tmp_path / "flat"), present, download=False) == tmp_path / "flat"


def test_locate_downloads_into_the_cache_when_nothing_is_present(served, tmp_path, monkeypatch):
    folder, url = served
    (folder / "data.bin").write_bytes(PAYLOAD)
    monkeypatch.setitem(fetch_mod.REMOTE, NAME, [RemoteFile("data.bin", url, SHA)])
    found = locate(NAME, str(tmp_path / "empty-cli"), present)
    assert found == tmp_path / "cache" / NAME
    assert (found / "data.bin").read_bytes() == PAYLOAD
    assert part_files(found) == []
    # the second lookup finds the cached copy without the server
    (folder / "data.bin").unlink()
    assert locate(NAME, None, present) == found


def test_locate_downloads_through_the_mirror_env_var(served, tmp_path, monkeypatch):
    folder, url = served
    (folder / "data.bin").write_bytes(PAYLOAD)
    monkeypatch.setitem(fetch_mod.REMOTE, NAME, [RemoteFile("data.bin", f"http://127.0.0.1:{unused_port()}/", SHA)])
    monkeypatch.setenv("CONVCOACH_MIRROR", url)
    assert (locate(NAME, None, present) / "data.bin").read_bytes() == PAYLOAD


def test_unreachable_server_error_tells_how_to_get_the_data(tmp_path, monkeypatch):
    monkeypatch.setitem(fetch_mod.REMOTE, NAME, [RemoteFile("data.bin", f"http://127.0.0.1:{unused_port()}/", SHA)])
    with pytest.raises(ConfigError) as info:
        locate(NAME, str(tmp_path / "cli"), present)
    message = str(info.value)
    assert f"dataset '{NAME}' not found in" in message
    assert str(tmp_path / "cli" / NAME) in message
    assert str(tmp_path / "cache" / NAME) in message
    assert "download failed" in message
    assert "Put the official files in one of those folders" in message
    assert "--data-dir" in message
    assert "retry with internet" in message
    assert not (tmp_path / "cache" / NAME / "data.bin").exists()


def test_without_download_a_missing_set_lists_the_searched_folders(tmp_path):
    with pytest.raises(ConfigError, match=f"dataset '{NAME}' not found in") as info:
        locate(NAME, str(tmp_path / "cli"), present, download=False)
    assert str(tmp_path / "cache" / NAME) in str(info.value)

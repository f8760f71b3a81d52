"""A throw-away PostgreSQL server for the shared-study tests: one cluster per session on 127.0.0.1 (a free port,
a temp dir, stopped at the end), one database per test, and `storage_url` on SQLite and PostgreSQL alike."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# durability is not tested here: without fsync the server starts and commits in milliseconds
FAST_SETTINGS = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: Debian's `postgresql` puts them in /usr/lib/postgresql/N/bin."""
    candidates = []
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip()
        candidates.append(Path(bindir))
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    return next((c for c in candidates if (c / "initdb").is_file() and (c / "pg_ctl").is_file()), None)


def server_user() -> list[str]:
    """The prefix that runs the server's commands: postgres refuses to run as root, so root runs them as the
    `postgres` user (Debian's package creates it) or `nobody`."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root with neither a 'postgres' nor a 'nobody' user to run the server as")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{Path(command[0]).name} failed: {(result.stderr or result.stdout).strip()[-300:]}")


def start_server(folder: Path) -> tuple[int, list[str]]:
    """initdb + pg_ctl start in `folder` (owned by the server's user); the port and the stop command."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    prefix = server_user()
    if prefix:
        user = pwd.getpwnam(prefix[2])
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, port = folder / "data", free_port()
    run([*prefix, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"])
    options = f"-h 127.0.0.1 -p {port} -k {folder} " + " ".join(FAST_SETTINGS)
    run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "start"])
    return port, [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """postgresql://postgres@127.0.0.1:PORT, a cluster of this session's own; the tests skip (with the reason)
    where the driver is missing or no server can be started."""
    psycopg = pytest.importorskip("psycopg", reason="no PostgreSQL driver: pip install 'convcoach[postgres]'")
    folder = Path(tempfile.mkdtemp(prefix="convcoach-postgres-"))
    try:
        port, stop = start_server(folder)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"cannot start a PostgreSQL server: {exc}")
    url = f"postgresql://postgres@127.0.0.1:{port}"
    try:
        psycopg.connect(f"{url}/postgres").close()
        yield url
    finally:
        subprocess.run(stop, capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _admin(server: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:  # no transaction: CREATE DATABASE
        connection.execute(statement)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A database of this test's own, dropped after it (with the connections killed processes left open)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    _admin(postgres_server, f"CREATE DATABASE {name}")
    yield f"{postgres_server}/{name}"
    _admin(postgres_server, f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A study's database: an SQLite file, or a PostgreSQL database of the test's own."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'study.db'}"

"""Services the production tests start for themselves: Debian's PostgreSQL (the instance's
storage, the DuckLake catalog) and Debian's redis-server (the Celery broker), each on a free
loopback port, in a temporary folder, stopped and removed afterwards. The fixtures are in
conftest.py."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Debian's PostgreSQL (15 on Debian 12), the newest installed if several are.
POSTGRES_BIN = max(
    Path("/usr/lib/postgresql").glob("*/bin"),
    key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
    default=Path("/usr/lib/postgresql/15/bin"),
)
PG_USER = "postgres"
PG_PASSWORD = "ctdata-test-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Postgres:
    port: int
    # The cluster's folder, which holds its Unix socket.
    folder: Path

    @property
    def environment(self) -> dict[str, str]:
        """What the README's dagster.yaml reads (its `{env: ...}` values)."""
        return {
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": PG_USER,
            "DAGSTER_PG_PASSWORD": PG_PASSWORD,
        }

    def create_database(self, name: str) -> str:
        """A new database; its libpq connection string (over TCP, with the password)."""
        as_postgres(
            str(POSTGRES_BIN / "createdb"), "-h", str(self.folder), "-p", str(self.port), name
        )
        return (
            f"dbname={name} host=127.0.0.1 port={self.port} user={PG_USER} password={PG_PASSWORD}"
        )


def as_postgres(*command: str) -> None:
    """A PostgreSQL program as the `postgres` user (PostgreSQL refuses to run as root)."""
    subprocess.run(
        ["runuser", "-u", PG_USER, "--", *command],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of its own in a temporary folder (owned by `postgres`, outside
    pytest's root-only tmp_path), on a free loopback port, with password authentication over
    TCP as in production and a `dagster` database; stopped and removed afterwards."""
    assert (POSTGRES_BIN / "initdb").exists(), (
        f"PostgreSQL is missing ({POSTGRES_BIN / 'initdb'}): apt-get install postgresql "
        "(scripts/test installs it)"
    )
    folder = Path(tempfile.mkdtemp(prefix="ctdata-postgres-"))
    shutil.chown(folder, PG_USER, PG_USER)
    data, password_file = folder / "data", folder / "password"
    password_file.write_text(PG_PASSWORD, encoding="utf-8")
    shutil.chown(password_file, PG_USER, PG_USER)
    port = free_port()
    try:
        as_postgres(
            str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "-E", "UTF8",
            f"--pwfile={password_file}", "--auth-local=trust", "--auth-host=scram-sha-256",
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder}"
        as_postgres(
            str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "postgres.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip
        try:
            cluster = Postgres(port, folder)
            cluster.create_database("dagster")
            yield cluster
        finally:
            as_postgres(str(POSTGRES_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


REDIS_SERVER = Path(shutil.which("redis-server") or "/usr/bin/redis-server")
REDIS_START_SECONDS = 30


REDIS_PASSWORD = "ctdata-test-redis-password"


@dataclass(frozen=True)
class Redis:
    port: int
    password: str = REDIS_PASSWORD

    @property
    def url(self) -> str:
        """The URL clients are given, password and all (as in production)."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"


@contextmanager
def running_redis() -> Iterator[Redis]:
    """redis-server on 127.0.0.1 and a free port, with a password as production's should have,
    keeping nothing on disk (no snapshots, no append-only file); stopped (SIGTERM, then waited
    for) afterwards."""
    assert REDIS_SERVER.exists(), (
        "redis-server is missing: apt-get install redis-server (scripts/test installs it)"
    )
    folder = Path(tempfile.mkdtemp(prefix="ctdata-redis-"))
    port = free_port()
    command = [
        str(REDIS_SERVER), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
        "--appendonly", "no", "--dir", str(folder), "--protected-mode", "yes",
        "--requirepass", REDIS_PASSWORD,
    ]  # fmt: skip
    with (folder / "redis.log").open("wb") as log:
        server = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + REDIS_START_SECONDS
        while not _answers_ping(port):
            assert server.poll() is None, (folder / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.1)
        yield Redis(port)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _answers_ping(port: int) -> bool:
    """Whether the server answers (it asks for the password first: that is an answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False

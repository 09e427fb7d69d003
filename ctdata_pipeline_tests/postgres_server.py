"""A real PostgreSQL (Debian's) for the tests that need one: the Dagster instance of the
production test, the DuckLake catalog of the warehouse tests. A cluster of its own in a temporary
folder, on a free loopback port, with password authentication over TCP as in production."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
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
def postgres_cluster() -> Iterator[Postgres]:
    """A running cluster (owned by `postgres`, outside pytest's root-only tmp_path) with a
    `dagster` database; stopped and removed afterwards."""
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

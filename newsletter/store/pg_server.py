"""A private, throwaway PostgreSQL server for the tests and the workers benchmark: Debian's
`postgresql` run with `pg_ctl` in a temporary directory, listening only on a Unix socket there.

initdb and postgres refuse to run as root (tests and CI run as root), so as root the server runs
as the unprivileged `nobody` via `runuser`. Each user gets a fresh database cloned from a
migrated template (`CREATE DATABASE ... TEMPLATE`), so none sees another's rows. Not for
production data: fsync is off.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What a developer runs when no server can be had (`make test` runs it itself as root).
POSTGRES_INSTALL = "sudo apt-get install postgresql"
RUN_AS = "nobody"


def postgres_bin() -> Path | None:
    """The newest installed Debian PostgreSQL's bin directory (None: not installed)."""
    override = os.environ.get("NEWSLETTER_TEST_PG_BIN")
    if override:
        return Path(override)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class PostgresServer:
    """One postgres process on a Unix socket in a private temporary directory."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self.template = ""

    def _command(self, *args: str) -> list[str]:
        if os.geteuid() != 0:
            return list(args)
        return ["runuser", "-u", RUN_AS, "--", *args]

    def start(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, RUN_AS)
            shutil.chown(self.socket_dir, RUN_AS)
        subprocess.run(
            self._command(
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        # No TCP listener: only the socket in our own directory. fsync off: a test server's
        # data need not survive a power cut, and it makes CREATE DATABASE fast.
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.socket_dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=200"
        )
        subprocess.run(
            self._command(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        pg_ctl = str(self.bin_dir / "pg_ctl")
        stop = self._command(pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}"

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.encode())

    def new_database(self, *, empty: bool = False) -> str:
        """A fresh, migrated database (cloned from the template), or with `empty` one with no
        tables at all; returns its URL."""
        with self._lock:
            if not self.template:
                self._make_template()
            name = f"test_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {'template0' if empty else self.template}")
        return self.url(name)

    def _make_template(self) -> None:
        from newsletter.store import Database
        from newsletter.store.postgres import close_pools

        self.admin("CREATE DATABASE newsletter_template")
        Database(self.url("newsletter_template")).close()
        close_pools(self.url("newsletter_template"))  # a template must have no sessions
        self.template = "newsletter_template"

    def drop_database(self, url: str) -> None:
        name = url.split("?", 1)[0].rsplit("/", 1)[1]
        from newsletter.store.postgres import close_pools

        close_pools(url)
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def running_postgres() -> Iterator[PostgresServer | str]:
    """A started server, or (where none can be had) the reason why not, with the command that
    installs one."""
    bin_dir = postgres_bin()
    if bin_dir is None or not (bin_dir / "pg_ctl").exists():
        yield f"PostgreSQL is not installed: {POSTGRES_INSTALL}"
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield "psycopg is not installed: .venv/bin/pip install -e '.[dev]'"
        return
    server = PostgresServer(bin_dir)
    try:
        server.start()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        server.stop()
        yield f"PostgreSQL did not start ({exc}; {detail.decode(errors='replace')[-300:]})"
        return
    try:
        yield server
    finally:
        server.stop()

"""Shared test fixtures: real SQLite files, a real SMTP server, a real headless Chromium."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Config, parse_config
from newsletter.delivery import Ledger
from newsletter.store import Database
from newsletter.subscriptions import Subscriptions

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-secret-key-0123456789abcdef"
DROP = "<drop the connection>"
# `@PIPELINING_OR_NOT` on a test that takes `smtp_server`: run it against a server that offers
# PIPELINING (RFC 2920, the client's fast path) and one that does not (smtplib's own path).
PIPELINING_OR_NOT = pytest.mark.parametrize(
    "smtp_server", [True, False], ids=["pipelining", "no-pipelining"], indirect=True
)
# What a developer runs when the browser tests skip (`make test` runs it itself as root).
CHROMIUM_INSTALL = "sudo apt-get install chromium"


def make_config(
    tmp_path: Path, extra_toml: str = "", database: str = "data/newsletter.db", **env: str
) -> Config:
    """A Config rooted in tmp_path; extra_toml is appended (whole [section]s). `database` is a
    path or a PostgreSQL URL (the `database_target` fixture gives either)."""
    text = (
        f'[storage]\ndata_dir = "data"\ndatabase = "{database}"\n'
        '[site]\nbase_url = "http://127.0.0.1:8000"\nname = "Test Digest"\n'
        'postal_address = "1 Test Street"\n' + extra_toml
    )
    return parse_config(text, base_dir=tmp_path, env={"NEWSLETTER_SECRET_KEY": SECRET, **env})


@pytest.fixture
def config(tmp_path: Path, database_target: str) -> Config:
    """A Config on the test's database (a SQLite file, or PostgreSQL: see BOTH_BACKENDS)."""
    return make_config(tmp_path, database=database_target)


@pytest.fixture
def store(database_target: str) -> Iterator[Database]:
    s = Database(database_target)
    yield s
    s.close()


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SMTPSink:
    """What a real aiosmtpd server on 127.0.0.1 received, parsed back into messages."""

    host: str
    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    # Optional per-recipient scripted replies, e.g. {"x@test": ["451 try later", None]}
    # (None = accept; DROP = close the connection). Each RCPT pops one reply.
    scripted: dict[str, list[str | None]] = field(default_factory=dict)
    # Replies to the message itself (after DATA), per recipient, the same way: None = accept.
    scripted_data: dict[str, list[str | None]] = field(default_factory=dict)
    pipelining: bool = True  # offered in the reply to EHLO
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = [r["data"] for r in self.received]
        return [
            email.message_from_bytes(b, policy=email.policy.default)  # type: ignore[misc]
            for b in raw
        ]


class _Handler:
    def __init__(self, sink: SMTPSink) -> None:
        self.sink = sink

    async def handle_EHLO(self, _server, session, _envelope, hostname, responses):
        """Offer PIPELINING (RFC 2920), as Postfix and the mail services do, unless the sink
        is told not to (`pipelining = False`: a server without it). A handler with this hook
        names the session's host itself (aiosmtpd leaves it to the hook)."""
        session.host_name = hostname
        if self.sink.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, _session, envelope, address, _rcpt_options):
        with self.sink.lock:
            script = self.sink.scripted.get(address)
            reply = script.pop(0) if script else None
        if reply == DROP:  # close the connection without an answer (a dropped relay)
            server.transport.close()
            return "421 closing"
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, _server, session, envelope):
        with self.sink.lock:
            script = self.sink.scripted_data.get(envelope.rcpt_tos[0])
            reply = script.pop(0) if script else None
            if reply is not None:
                return reply
            self.sink.received.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "data": bytes(envelope.original_content or envelope.content),
                    "peer": session.peer,
                }
            )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SMTPSink]:
    """A real aiosmtpd SMTP server on 127.0.0.1 (a free port); it offers PIPELINING, or not
    where a test is parametrized indirectly with `PIPELINING_OR_NOT`."""
    from aiosmtpd.controller import Controller

    sink = SMTPSink("127.0.0.1", free_port(), pipelining=getattr(request, "param", True))
    controller = Controller(
        _Handler(sink),
        hostname="127.0.0.1",
        port=sink.port,
        decode_data=False,
        enable_SMTPUTF8=True,
    )
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


def chromium_or_skip() -> str:
    """Debian's Chromium; where it is missing, skip the test with the command that installs it."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip(f"Debian's chromium is not installed: {CHROMIUM_INSTALL}")
    return path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the browser `browser` (`-m "not browser"` leaves them out)."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (skips as `chromium_or_skip` says)."""
    executable = chromium_or_skip()
    from playwright import sync_api  # a dev dependency, installed with pytest

    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield b
        finally:
            b.close()


def ledger_for(store: Database, cfg: Config, clock: Callable[[], datetime] | None = None) -> Ledger:
    """The send ledger as `send_daily` builds it (bounces go through Subscriptions)."""
    now = clock or (lambda: datetime.now(UTC))
    return Ledger(store, cfg, now, Subscriptions(store, cfg, now).bounce)


# ------------------------------------------------------------ PostgreSQL

# Test modules whose `store` and `config` run on both backends (the rest stay on SQLite).
BOTH_BACKENDS = {
    "test_claims",
    "test_store",
    "test_store_ids",
    "test_store_limits",
    "test_deliver",
    "test_send",
    "test_subscriptions",
    "test_web",
    "test_web_trust",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the `backend`-using tests of BOTH_BACKENDS modules on SQLite and on PostgreSQL."""
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if "backend" in metafunc.fixturenames and module in BOTH_BACKENDS:
        metafunc.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One real PostgreSQL server for the session (tests/pg_support.py), or the skip reason."""
    from tests.pg_support import running_postgres

    with running_postgres() as server:
        yield server


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """Where this test's database lives: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield str(tmp_path / "data" / "newsletter.db")
        return
    server = request.getfixturevalue("postgres_server")
    if isinstance(server, str):
        pytest.skip(server)
    url = server.new_database()
    yield url
    server.drop_database(url)


@pytest.fixture
def pg_url(postgres_server: Any) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for a PostgreSQL-only test (skips without one)."""
    if isinstance(postgres_server, str):
        pytest.skip(postgres_server)
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)

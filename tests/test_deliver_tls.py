"""SMTP security and failure modes against real servers: STARTTLS + login, implicit TLS, a
refused login, and an acknowledgement lost to a timeout (retried with the same Message-ID)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import shutil
import ssl
import subprocess
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from newsletter import delivery
from newsletter.delivery import mime
from newsletter.models import SendStatus, SubscriberStatus
from newsletter.render.renderer import RenderedEmail
from newsletter.store import Database
from tests.conftest import free_port, ledger_for, make_config

DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
PASSWORD = "s3cret-pass"


class Recorder:
    def __init__(self, first_delay: float = 0.0) -> None:
        self.messages: list[tuple[list[str], bytes, bool]] = []
        self.first_delay = first_delay
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            first = not self.messages
            tls = server.transport.get_extra_info("ssl_object") is not None
            self.messages.append((list(envelope.rcpt_tos), envelope.original_content, tls))
        if first and self.first_delay:
            await asyncio.sleep(self.first_delay)  # the client gives up before the 250
        return "250 OK"


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = data.login == b"digest" and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def _job(cfg: Any, store: Database) -> delivery.Outgoing:
    sub, _ = store.subscribers.add("ann@example.org", NOW, status=SubscriberStatus.ACTIVE)
    mid = mime.message_id_for(cfg, sub.id, DAY)
    rendered = RenderedEmail("Papers", "<p>hi</p>", "hi", "")
    raw = mime.render_bytes(cfg, sub, rendered, message_id=mid, digest_date=DAY, now=NOW)
    return delivery.Outgoing(sub, DAY, mid, raw, cfg.email.from_address, ("2611.00001",))


def _cfg(tmp_path: Path, port: int, security: str, username: str = "digest", **env: str):
    return make_config(
        tmp_path,
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
        f'username = "{username}"\ntimeout_seconds = 5.0\nmax_attempts = 2\n',
        NEWSLETTER_SMTP_PASSWORD=env.get("password", PASSWORD),
    )


def test_starttls_and_login(
    tmp_path: Path, store: Database, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))  # trust the test certificate
    rec, port = Recorder(), free_port()
    controller = Controller(
        rec,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(cert),
        require_starttls=True,
        authenticator=_auth,
        auth_require_tls=True,
    )
    controller.start()
    try:
        cfg = _cfg(tmp_path, port, "starttls")
        report = delivery.deliver(
            cfg, delivery.mailer_from_config(cfg), [_job(cfg, store)], ledger_for(store, cfg)
        )
    finally:
        controller.stop()
    assert report.sent == 1, report
    ((rcpts, raw, tls),) = rec.messages
    assert rcpts == ["ann@example.org"] and tls
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw


def test_implicit_tls(
    tmp_path: Path, store: Database, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    rec, port = Recorder(), free_port()
    controller = Controller(
        rec,
        hostname="127.0.0.1",
        port=port,
        ssl_context=_server_context(cert),
        authenticator=_auth,
        auth_require_tls=False,  # aiosmtpd only counts STARTTLS as TLS; this socket is TLS
    )
    controller.start()
    try:
        cfg = _cfg(tmp_path, port, "ssl")
        report = delivery.deliver(
            cfg, delivery.mailer_from_config(cfg), [_job(cfg, store)], ledger_for(store, cfg)
        )
    finally:
        controller.stop()
    assert report.sent == 1 and rec.messages[0][2]


def test_untrusted_certificate_and_wrong_password_stop_the_run_clearly(
    tmp_path: Path, store: Database, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, port = Recorder(), free_port()
    controller = Controller(
        rec,
        hostname="127.0.0.1",
        port=port,
        tls_context=_server_context(cert),
        authenticator=_auth,
        auth_require_tls=True,
    )
    controller.start()
    try:
        cfg = _cfg(tmp_path, port, "starttls")
        job = _job(cfg, store)
        untrusted = delivery.deliver(
            cfg, delivery.mailer_from_config(cfg), [job], ledger_for(store, cfg)
        )
        assert untrusted.sent == 0 and "TLS with 127.0.0.1" in untrusted.aborted
        monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
        bad = _cfg(tmp_path, port, "starttls", password="wrong")
        refused = delivery.deliver(
            bad, delivery.mailer_from_config(bad), [job], ledger_for(store, bad)
        )
    finally:
        controller.stop()
    assert refused.sent == 0 and "refused the login for 'digest'" in refused.aborted
    assert "NEWSLETTER_SMTP_PASSWORD" in refused.aborted
    row = store.sends.get(job.subscriber.id, DAY)
    assert row.status == SendStatus.RETRY  # not the subscriber's fault: no failure, no bounce
    assert store.subscribers.get(job.subscriber.id).status == SubscriberStatus.ACTIVE
    assert rec.messages == []


def test_lost_acknowledgement_is_retried_with_the_same_message_id(
    tmp_path: Path, store: Database
) -> None:
    rec, port = Recorder(first_delay=2.0), free_port()
    controller = Controller(rec, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        cfg = make_config(
            tmp_path,
            f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            "timeout_seconds = 0.5\n",
        )
        job = _job(cfg, store)
        waits: list[float] = []
        report = delivery.deliver(
            cfg, delivery.mailer_from_config(cfg), [job], ledger_for(store, cfg), sleep=waits.append
        )
    finally:
        controller.stop()
    assert report.sent == 1 and waits == [2.0]
    ids = [
        email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
        for _, raw, _ in rec.messages
    ]
    assert ids == [job.message_id, job.message_id]  # the server got it twice, as one message
    row = store.sends.get(job.subscriber.id, DAY)
    assert row.status == SendStatus.SENT and row.attempts == 2

"""`newsletter inbound`: the List-Unsubscribe mailto: of a real digest, answered the way a mail
client answers it and piped in the way an MTA pipes it; a real SQLite file, a real aiosmtpd."""

from __future__ import annotations

import email
import email.policy
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from click.testing import CliRunner, Result
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from newsletter import pipeline
from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.demo import DEMO_DAY
from newsletter.inbound import EX_DATAERR, EX_OK, EX_TEMPFAIL
from newsletter.models import SubscriberStatus
from newsletter.store import Database
from newsletter.tokens import make_token
from tests.conftest import SECRET, SMTPSink
from tests.test_send import NOW, READERS, received, seed, send, write_config

ALL_ACTIVE = dict.fromkeys(READERS, SubscriberStatus.ACTIVE)
ADA = "ada@example.org"


@pytest.fixture
def config(tmp_path: Path, smtp_server: SMTPSink) -> Path:
    path = write_config(tmp_path, smtp_server.port)
    seed(path)
    return path


@pytest.fixture
def digest(config: Path, monkeypatch: pytest.MonkeyPatch) -> EmailMessage:
    """Ada's digest, the exact bytes `send` would hand to SMTP (built, not sent)."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    cfg = load_config(str(config))
    with Database(cfg.database_path) as store:
        ctx = pipeline.Context(store, cfg)
        (preview,) = pipeline.preview_digests(ctx, DEMO_DAY, pipeline.find_subscribers(ctx, [ADA]))
    return email.message_from_bytes(preview.eml, policy=email.policy.default)  # type: ignore[return-value]


def unsubscribe_mailto(digest: EmailMessage) -> tuple[str, str]:
    """(address, subject) of the mailto: in a digest's List-Unsubscribe header (RFC 6068)."""
    urls = re.findall(r"<([^>]+)>", str(digest["List-Unsubscribe"]))
    (mailto,) = [u for u in urls if u.startswith("mailto:")]
    parts = urlsplit(mailto)
    return unquote(parts.path), parse_qs(parts.query)["subject"][0]


def compose(sender: str, to: str, subject: str, **headers: str) -> bytes:
    """The message a mail client sends for a mailto: link, as it reaches the MTA."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(NOW)
    msg["Message-ID"] = make_msgid(domain="mail.example.net")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content("")
    return msg.as_bytes()


def reply_to(digest: EmailMessage, **headers: str) -> bytes:
    to, subject = unsubscribe_mailto(digest)
    return compose("Ada <ada@example.org>", to, subject, **headers)


def inbound(config: Path, raw: bytes, secret: str = SECRET) -> Result:
    env = {"NEWSLETTER_SECRET_KEY": secret, "NEWSLETTER_CONFIG": str(config)}
    return CliRunner().invoke(cli, ["inbound"], input=raw, env=env)


def statuses(config: Path) -> dict[str, SubscriberStatus]:
    with Database(load_config(str(config)).database_path) as store:
        return {s.email: s.status for s in store.subscribers.list()}


def token_in(subject: str) -> str:
    return subject.removeprefix("unsubscribe ")


def test_the_reply_to_a_digests_mailto_unsubscribes_that_reader(
    config: Path, smtp_server: SMTPSink
) -> None:
    sent = send(config)
    assert sent.exit_code == 0, sent.output
    digest = received(smtp_server)[ADA][0]  # as the real send put it on the wire
    to, subject = unsubscribe_mailto(digest)
    assert to == "unsubscribe@example.org" and subject.startswith("unsubscribe ")
    before = len(smtp_server.received)
    raw = reply_to(digest)
    piped = subprocess.run(  # as an MTA's pipe alias runs it
        [sys.executable, "-m", "newsletter", "--config", str(config), "inbound"],
        input=raw,
        capture_output=True,
        env={**os.environ, "NEWSLETTER_SECRET_KEY": SECRET},
        timeout=60,
    )
    assert piped.returncode == EX_OK, piped.stderr
    assert piped.stdout.decode().splitlines() == ["unsubscribed ada@example.org"]
    assert statuses(config) == {**ALL_ACTIVE, "ada@example.org": SubscriberStatus.UNSUBSCRIBED}
    (notice,) = [
        email.message_from_bytes(r["data"], policy=email.policy.default)
        for r in smtp_server.received[before:]
    ]
    assert notice["To"].addresses[0].addr_spec == "ada@example.org"
    assert notice["List-Unsubscribe"] is None and "/resubscribe/" in str(notice.get_body())

    again = inbound(config, raw)  # a second copy (a client that sent twice) changes nothing
    assert again.exit_code == EX_OK and again.output == "ada@example.org was already unsubscribed\n"
    assert len(smtp_server.received) == before + 1
    later = send(config, "--resend", "ada@example.org")
    assert later.exit_code == 1 and "ada@example.org is unsubscribed" in later.output


def _old_token(subscriber_id: int, years: int) -> str:
    """An unsubscribe token signed `years` ago with the site's secret."""

    class Then(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - years * 365 * 86_400

    signer = URLSafeTimedSerializer(SECRET, salt="newsletter.unsubscribe", signer=Then)
    return str(signer.dumps({"s": subscriber_id}))


def _swapped(token: str) -> str:
    """Ada's signature on a payload naming another subscriber (id 2, Grace)."""
    payload, rest = token.split(".", 1)
    other = make_token(SECRET, "unsubscribe", 2).split(".", 1)[0]
    assert other != payload
    return f"{other}.{rest}"


def _flipped(token: str) -> str:
    i = len(token) - 10  # inside the signature, where every bit counts
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        (lambda t: f"unsubscribe {_swapped(t)}", "token is not valid"),
        (lambda t: f"unsubscribe {_flipped(t)}", "token is not valid"),
        (lambda t: f"unsubscribe {t[: len(t) // 2]}", "token is not valid"),
        (lambda _: f"unsubscribe {_old_token(1, years=6)}", "token has expired"),
        (lambda _: f"unsubscribe {make_token(SECRET, 'manage', 1)}", "token is not valid"),
        (lambda _: "unsubscribe", "no unsubscribe token in the subject"),
        (lambda _: "please remove me", "no unsubscribe token in the subject"),
    ],
    ids=["other-payload", "flipped", "cut", "expired", "manage-token", "bare", "prose"],
)
def test_a_message_without_a_valid_token_is_refused_and_changes_nothing(
    config: Path, digest: EmailMessage, smtp_server: SMTPSink, subject, reason: str
) -> None:
    to, real = unsubscribe_mailto(digest)
    before = len(smtp_server.received)
    # From Ada's own address: the sender alone proves nothing (anyone can write any From:)
    result = inbound(config, compose("ada@example.org", to, subject(token_in(real))))
    assert result.exit_code == EX_DATAERR, result.output
    (line,) = result.output.splitlines()
    assert line.startswith("refused: ") and reason in line
    assert statuses(config) == ALL_ACTIVE
    assert len(smtp_server.received) == before


def test_a_token_older_than_the_web_links_lifetime_is_still_fine_below_it(config: Path) -> None:
    result = inbound(config, compose("x@example.net", "u@x", f"unsubscribe {_old_token(3, 4)}"))
    assert result.exit_code == EX_OK and result.output == "unsubscribed alan@example.org\n"


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff\xfe not an e-mail at all \x1b]0;x\x07", b"Subject: =?utf-8?q?=ZZ?=\r\n\r\n"],
    ids=["empty", "garbage", "bad-encoded-word"],
)
def test_bytes_that_are_no_request_are_refused(config: Path, raw: bytes) -> None:
    result = inbound(config, raw)
    assert result.exit_code == EX_DATAERR and result.output.startswith("refused: ")
    assert statuses(config) == ALL_ACTIVE


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto_Submitted": "auto-replied"},
        {"Precedence": "auto_reply", "X_Autoreply": "yes"},
        {"Return_Path": "<>"},
    ],
    ids=["auto-submitted", "precedence", "null-sender"],
)
def test_an_automatic_reply_without_a_valid_token_is_consumed_quietly(
    config: Path, digest: EmailMessage, headers: dict[str, str]
) -> None:
    to, real = unsubscribe_mailto(digest)
    for subject in ("Out of office: unsubscribe", f"Auto: unsubscribe {_flipped(token_in(real))}"):
        result = inbound(config, compose("ada@example.org", to, subject, **headers))
        # 0, not 65: a refusal would send a bounce to an auto-responder (a mail loop)
        assert result.exit_code == EX_OK and result.output.startswith("ignored: an automatic")
    assert statuses(config) == ALL_ACTIVE


def test_a_delivery_report_is_not_acted_on(config: Path) -> None:
    report = (
        b"From: MAILER-DAEMON@mx.example.net\r\nTo: unsubscribe@example.org\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nunsubscribe\r\n--b--\r\n"
    )
    result = inbound(config, report)
    assert result.exit_code == EX_OK and "a delivery report" in result.output
    assert statuses(config) == ALL_ACTIVE


def test_an_automatic_request_with_a_valid_token_is_honoured(
    config: Path, digest: EmailMessage
) -> None:
    # A mailbox provider's unsubscribe button sends the mailto: message itself.
    to, subject = unsubscribe_mailto(digest)
    raw = compose("ada@example.org", to, f"Re: {subject}", Auto_Submitted="auto-generated")
    result = inbound(config, raw)
    assert result.exit_code == EX_OK and result.output == "unsubscribed ada@example.org\n"
    assert statuses(config)["ada@example.org"] == SubscriberStatus.UNSUBSCRIBED


def test_a_token_for_a_subscription_that_is_gone_is_consumed(config: Path) -> None:
    raw = compose("x@example.net", "u@x", f"unsubscribe {make_token(SECRET, 'unsubscribe', 99)}")
    result = inbound(config, raw)
    assert result.exit_code == EX_OK and "no longer exists" in result.output
    assert statuses(config) == ALL_ACTIVE


def test_without_the_secret_key_or_the_database_the_mta_is_told_to_retry(
    config: Path, digest: EmailMessage, tmp_path: Path
) -> None:
    raw = reply_to(digest)
    no_key = inbound(config, raw, secret="")
    assert no_key.exit_code == EX_TEMPFAIL, no_key.output
    assert no_key.output.startswith("deferred: ") and "NEWSLETTER_SECRET_KEY" in no_key.output
    broken = tmp_path / "broken.toml"  # a database path that cannot be opened
    (tmp_path / "not-a-file.db").mkdir()
    broken.write_text(config.read_text().replace("data/newsletter.db", "not-a-file.db"))
    no_db = inbound(broken, raw)
    assert no_db.exit_code == EX_TEMPFAIL and no_db.output.startswith("deferred: ")
    assert "Traceback" not in no_key.output + no_db.output
    assert statuses(config) == ALL_ACTIVE
    assert inbound(config, raw).exit_code == EX_OK  # the MTA's retry then lands


def test_a_briefly_locked_database_delays_the_unsubscribe_without_losing_it(
    config: Path, digest: EmailMessage
) -> None:
    path = str(load_config(str(config)).database_path)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, e.g. a send run's ledger
    release = threading.Timer(1.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        started = time.monotonic()
        result = inbound(config, reply_to(digest))
        waited = time.monotonic() - started
    finally:
        release.join()
        holder.close()
    assert result.exit_code == EX_OK, result.output
    assert waited >= 0.9
    assert statuses(config)["ada@example.org"] == SubscriberStatus.UNSUBSCRIBED

"""The ledger-driven send loop against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import mailbox
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter import delivery
from newsletter.delivery import mime
from newsletter.errors import DeliveryError
from newsletter.models import SendStatus, Subscriber, SubscriberStatus
from newsletter.render.renderer import RenderedEmail
from newsletter.store import Database
from tests.conftest import (
    DROP,
    PIPELINING_OR_NOT,
    SMTPSink,
    free_port,
    ledger_for,
    make_config,
)

DAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def _cfg(tmp_path: Path, sink_port: int, extra: str = "", connections: int = 1):
    return make_config(
        tmp_path,
        f'[smtp]\nhost = "127.0.0.1"\nport = {sink_port}\nsecurity = "none"\n'
        f"connections = {connections}\nmax_attempts = 3\nbounce_after = 2\n" + extra,
    )


def _subscribers(store: Database, n: int) -> list[Subscriber]:
    return [
        store.subscribers.add(f"reader{i}@example.org", NOW, status=SubscriberStatus.ACTIVE)[0]
        for i in range(n)
    ]


def _jobs(cfg, subs: list[Subscriber], store: Database | None = None) -> list[delivery.Outgoing]:
    jobs = []
    for sub in subs:
        row = store.sends.get(sub.id, DAY) if store is not None else None
        mid = mime.message_id_for(cfg, sub.id, DAY)
        rendered = RenderedEmail(f"Papers for {sub.email}", "<p>hi</p>", "hi", "pre")
        raw = mime.render_bytes(cfg, sub, rendered, message_id=mid, digest_date=DAY, now=NOW)
        prior = row.attempts if row else 0
        jobs.append(
            delivery.Outgoing(sub, DAY, mid, raw, cfg.email.from_address, ("2611.00001",), prior)
        )
    return jobs


def _by_recipient(sink: SMTPSink) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for rec, msg in zip(sink.received, sink.messages(), strict=True):
        for rcpt in rec["to"]:
            out.setdefault(rcpt, []).append(msg["Message-ID"])
    return out


def _run(store, cfg, subs, sleeps=None):
    mailer = delivery.mailer_from_config(cfg)
    waits: list[float] = [] if sleeps is None else sleeps
    return delivery.deliver(
        cfg, mailer, _jobs(cfg, subs, store), ledger_for(store, cfg), sleep=waits.append
    )


@PIPELINING_OR_NOT
def test_batch_over_one_reused_connection_recorded_in_the_ledger(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    cfg = _cfg(tmp_path, smtp_server.port)
    subs = _subscribers(store, 5)
    report = _run(store, cfg, subs)
    assert (report.sent, report.failed, report.retry, report.aborted) == (5, 0, 0, "")
    got = _by_recipient(smtp_server)
    assert sorted(got) == sorted(s.email for s in subs)
    assert all(len(ids) == 1 for ids in got.values())
    assert len({rec["peer"] for rec in smtp_server.received}) == 1  # one connection, reused
    for sub in subs:
        row = store.sends.get(sub.id, DAY)
        assert row is not None and row.status == SendStatus.SENT
        assert row.message_id == got[sub.email][0] == mime.message_id_for(cfg, sub.id, DAY)
        assert row.paper_ids == ("2611.00001",)
        assert row.attempts == 1
    # The same jobs again: every row is sent, nothing goes out.
    again = _run(store, cfg, subs)
    assert (again.sent, again.already_sent) == (0, 5)
    assert len(smtp_server.received) == 5


@PIPELINING_OR_NOT
def test_451_then_250_is_retried_with_backoff_and_delivered_once(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    cfg = _cfg(tmp_path, smtp_server.port)
    subs = _subscribers(store, 3)
    smtp_server.scripted[subs[1].email] = ["451 4.7.1 Try again later", None]
    sleeps: list[float] = []
    report = _run(store, cfg, subs, sleeps)
    assert (report.sent, report.retry, report.failed) == (3, 0, 0)
    assert sleeps == [2.0]
    assert all(len(v) == 1 for v in _by_recipient(smtp_server).values())
    row = store.sends.get(subs[1].id, DAY)
    assert row.status == SendStatus.SENT and row.attempts == 2


@PIPELINING_OR_NOT
def test_550_fails_only_that_subscriber_and_the_run_goes_on(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    cfg = _cfg(tmp_path, smtp_server.port)
    subs = _subscribers(store, 4)
    smtp_server.scripted[subs[0].email] = ["550 5.1.1 No such user here"]
    report = _run(store, cfg, subs)
    assert (report.sent, report.failed) == (3, 1)
    assert report.failures[0][0] == subs[0].email and "550 5.1.1" in report.failures[0][1]
    row = store.sends.get(subs[0].id, DAY)
    assert row.status == SendStatus.FAILED and "550 5.1.1 No such user here" in row.error
    assert sorted(_by_recipient(smtp_server)) == sorted(s.email for s in subs[1:])
    assert store.subscribers.get(subs[0].id).status == SubscriberStatus.ACTIVE  # 1 of 2 allowed


@PIPELINING_OR_NOT
def test_a_message_refused_after_data_fails_or_waits_by_its_code_on_the_same_connection(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    """A 5xx to the message itself fails that day's message, a 4xx leaves it to retry;
    neither is a lost connection: the rest go over the same one. Only a refusal whose status
    code names the mailbox (5.1.1, 5.2.2, ...) counts toward the reader's bounces: a relay that
    refuses the content or the size refuses it for everyone, and must not unsubscribe them."""
    cfg = _cfg(tmp_path, smtp_server.port)
    subs = _subscribers(store, 5)
    smtp_server.scripted_data[subs[0].email] = ["554 5.7.1 Message rejected as spam"]
    smtp_server.scripted_data[subs[2].email] = ["452 4.3.1 Insufficient storage", None]
    smtp_server.scripted_data[subs[4].email] = ["550 5.1.1 No such user here"]
    report = _run(store, cfg, subs)
    assert (report.sent, report.failed) == (3, 2)
    row = store.sends.get(subs[0].id, DAY)
    assert row.status == SendStatus.FAILED and "554 5.7.1 Message rejected as spam" in row.error
    assert store.sends.get(subs[2].id, DAY).status == SendStatus.SENT  # retried, then taken
    assert sorted(_by_recipient(smtp_server)) == sorted(s.email for s in subs[1:4])
    assert len({rec["peer"] for rec in smtp_server.received}) == 1  # never reconnected
    hard = "SELECT hard_failures FROM subscribers WHERE id = ?"
    counts = [store.conn.execute(hard, [s.id]).fetchone()[0] for s in (subs[0], subs[4])]
    assert counts == [0, 1]


@PIPELINING_OR_NOT
def test_consecutive_hard_failures_mark_the_subscriber_bounced(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    cfg = _cfg(tmp_path, smtp_server.port)
    (sub,) = _subscribers(store, 1)
    smtp_server.scripted[sub.email] = ["550 mailbox unavailable", "550 mailbox unavailable"]
    _run(store, cfg, [sub])
    mailer = delivery.mailer_from_config(cfg)
    job = _jobs(cfg, [sub])[0]
    job.digest_date = date(2026, 11, 24)
    report = delivery.deliver(cfg, mailer, [job], ledger_for(store, cfg), sleep=lambda s: None)
    assert report.bounced == [sub.email]
    assert store.subscribers.get(sub.id).status == SubscriberStatus.BOUNCED


@PIPELINING_OR_NOT
def test_connection_dropped_mid_batch_is_survived(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    cfg = _cfg(tmp_path, smtp_server.port)
    subs = _subscribers(store, 6)
    smtp_server.scripted[subs[2].email] = [DROP, None]
    smtp_server.scripted[subs[4].email] = [DROP, None]
    sleeps: list[float] = []
    report = _run(store, cfg, subs, sleeps)
    assert (report.sent, report.failed, report.retry) == (6, 0, 0)
    got = _by_recipient(smtp_server)
    assert sorted(got) == sorted(s.email for s in subs)
    assert all(len(ids) == 1 for ids in got.values())
    assert len({rec["peer"] for rec in smtp_server.received}) == 3  # reconnected twice
    assert sleeps == [2.0, 2.0]


@PIPELINING_OR_NOT
def test_persistent_4xx_is_left_retry_and_the_next_run_sends_it(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    cfg = _cfg(tmp_path, smtp_server.port)
    subs = _subscribers(store, 2)
    smtp_server.scripted[subs[0].email] = ["452 4.2.2 Mailbox full"] * 3
    sleeps: list[float] = []
    report = _run(store, cfg, subs, sleeps)
    assert (report.sent, report.retry) == (1, 1)
    assert sleeps == [2.0, 4.0]  # exponential backoff, 3 attempts
    row = store.sends.get(subs[0].id, DAY)
    assert row.status == SendStatus.RETRY and "452 4.2.2" in row.error
    again = _run(store, cfg, subs)
    assert (again.sent, again.already_sent) == (1, 1)
    assert store.sends.get(subs[0].id, DAY).attempts == 4
    assert all(len(v) == 1 for v in _by_recipient(smtp_server).values())


def test_unreachable_server_stops_the_run_and_loses_nobody(tmp_path: Path, store: Database) -> None:
    cfg = _cfg(tmp_path, free_port())
    subs = _subscribers(store, 5)
    sleeps: list[float] = []
    report = _run(store, cfg, subs, sleeps)
    assert report.sent == 0 and report.failed == 0
    assert "cannot connect to the SMTP server" in report.aborted
    rows = store.sends.on(DAY)
    assert all(r.status in (SendStatus.RETRY, SendStatus.CLAIMED) for r in rows)
    assert not store.sends.with_status(SendStatus.FAILED)
    assert all(s.status == SubscriberStatus.ACTIVE for s in store.subscribers.list())


def test_parallel_connections_deliver_each_message_once(
    tmp_path: Path, store: Database, smtp_server: SMTPSink
) -> None:
    cfg = _cfg(tmp_path, smtp_server.port, connections=3)
    subs = _subscribers(store, 30)
    report = _run(store, cfg, subs)
    assert report.sent == 30
    got = _by_recipient(smtp_server)
    assert len(got) == 30 and all(len(v) == 1 for v in got.values())
    assert 1 < len({rec["peer"] for rec in smtp_server.received}) <= 3


def test_maildir_outbox(tmp_path: Path, store: Database) -> None:
    cfg = make_config(tmp_path, '[delivery]\nmethod = "maildir:outbox"\n')
    subs = _subscribers(store, 3)
    mailer = delivery.mailer_from_config(cfg)
    assert isinstance(mailer, delivery.MaildirMailer)
    report = delivery.deliver(cfg, mailer, _jobs(cfg, subs), ledger_for(store, cfg))
    assert report.sent == 3
    box = mailbox.Maildir(tmp_path / "outbox", create=False)
    ids = sorted(m["Message-ID"] for m in box)
    assert ids == sorted(mime.message_id_for(cfg, s.id, DAY) for s in subs)
    raw = next(iter(box.values())).as_bytes()
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in raw


@PIPELINING_OR_NOT
def test_single_message_send_api(tmp_path: Path, store: Database, smtp_server: SMTPSink) -> None:
    cfg = _cfg(tmp_path, smtp_server.port)
    (sub,) = _subscribers(store, 1)
    rendered = RenderedEmail("Confirm", "<p>confirm</p>", "confirm", "")
    msg = mime.build_message(
        cfg, sub, rendered, message_id=mime.new_message_id(cfg), kind="confirm"
    )
    delivery.mailer_from_config(cfg).send(msg)
    assert smtp_server.messages()[0]["Subject"] == "Confirm"
    smtp_server.scripted[sub.email] = ["550 5.1.1 unknown"]
    with pytest.raises(DeliveryError) as info:
        delivery.mailer_from_config(cfg).send(msg)
    assert info.value.temporary is False and info.value.reply.startswith("550 5.1.1")


def test_rate_limit_spaces_messages() -> None:
    t = [100.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        t[0] += s

    limiter = delivery.SendRate(4.0, clock=lambda: t[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert waits == [0.25, 0.25, 0.25, 0.25]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("port = 0", "smtp.port is 0"),
        ("timeout_seconds = 0", "smtp.timeout_seconds must be more than 0"),
        ("rate_per_second = -1", "smtp.rate_per_second cannot be negative"),
        ("max_attempts = 0", "smtp.max_attempts must be at least 1"),
        ("bounce_after = 0", "smtp.bounce_after must be at least 1"),
        ('security = "tls"', 'use "starttls", "ssl" or "none"'),
    ],
)
def test_bad_smtp_settings_are_clear_config_errors(
    tmp_path: Path, setting: str, message: str
) -> None:
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        make_config(tmp_path, f"[smtp]\n{setting}\n")


@PIPELINING_OR_NOT
def test_lines_that_start_with_a_dot_arrive_as_written(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    """Our DATA doubles a line's leading dot (RFC 5321 4.5.2) as smtplib does, and the server
    takes it off again: what arrives is what was built."""
    from newsletter.delivery.smtp import SMTPSession

    cfg = make_config(
        tmp_path, f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\nsecurity = "none"\n'
    )
    bodies = [
        b".starts with a dot\r\n.\r\n..two\r\nmiddle . dot\r\n.=2E\r\n",
        b"Subject: x\r\n\r\nno dot line at all\r\n",
        b"Subject: y\r\n\r\nno final line break",
    ]
    session = SMTPSession(cfg)
    try:
        for raw in bodies:
            session.send_raw(raw, "sender@example.org", ["reader@example.org"])
    finally:
        session.close()
    got = [r["data"] for r in smtp_server.received]
    assert got == [bodies[0], bodies[1], bodies[2] + b"\r\n"]


def test_dot_stuffing_and_quoted_addresses_are_smtplibs() -> None:
    import random
    import smtplib

    from newsletter.delivery.smtp import dot_stuffed, quote_address

    rng = random.Random(5)
    for _ in range(5000):
        raw = b"".join(rng.choice([b".", b"\n", b"\r\n", b"a", b"..", b" "]) for _ in range(12))
        assert dot_stuffed(raw) == smtplib._quote_periods(raw)  # type: ignore[attr-defined]
    addresses = [
        "reader@example.org", "a.b+c@sub.example.co.uk", "o'brien@example.ie", "x@localhost",
        "Ann <ann@example.org>", "a..b@example.org", ".a@example.org", "a.@example.org",
        '"quoted local"@example.org', "no-at-sign", "", "a@b@c", "a@-x.org", "ü@example.org",
    ]  # fmt: skip
    for address in addresses:
        assert quote_address(address) == smtplib.quoteaddr(address), address


class _ScriptedServer:
    """A scripted SMTP server on a raw socket, one connection. `script`: per transaction, the
    replies to MAIL, RCPT, DATA and (after a 354) to the message; a transaction ends at the
    message's 2xx or at RSET. With `pipelining` it offers PIPELINING and answers nothing of
    a transaction until it has read its DATA: a client that waited for each reply before the
    next command would time out. `groups`: the commands read before each burst of replies."""

    def __init__(self, script: list[dict[str, str]], pipelining: bool) -> None:
        import socket
        import threading

        self.script = script
        self.pipelining = pipelining
        self.groups: list[list[str]] = []
        self.bodies: list[bytes] = []
        self.error: BaseException | None = None
        self.turn = 0  # the transaction the script is at
        self.done = threading.Event()  # set by the test: take no more connections
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.listener.settimeout(0.1)
            while self.turn < len(self.script) and not self.done.is_set():
                try:  # a connection at a time; the script goes on across them
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                conn.settimeout(None)
                self.connections += 1
                with conn, conn.makefile("rb") as rfile:
                    self._talk(conn, rfile)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.listener.close()

    def _talk(self, conn: Any, rfile: Any) -> None:
        conn.sendall(b"220 test ESMTP\r\n")
        assert rfile.readline().upper().startswith(b"EHLO")
        offer = b"250-PIPELINING\r\n" if self.pipelining else b""
        conn.sendall(b"250-test\r\n" + offer + b"250 SIZE 1000000\r\n")
        group: list[str] = []
        owed: list[str] = []
        while self.turn < len(self.script):
            turn = self.turn
            line = rfile.readline().decode().strip()
            verb = line.split(" ")[0].upper()
            if verb == "":  # the client hung up
                return
            if verb == "QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            group.append(line)
            owed.append(self.script[turn].get(verb.lower(), "250 reset"))
            if self.pipelining and verb in ("MAIL", "RCPT"):
                continue  # a pipelining client sends on without waiting: answer at DATA
            conn.sendall(("\r\n".join(owed) + "\r\n").encode())
            self.groups.append(group)
            last, group, owed = owed[-1], [], []
            if verb == "RSET":
                self.turn += 1
            elif verb == "DATA" and last.startswith("354"):
                body = b""
                while not body.endswith(b"\r\n.\r\n"):
                    line_of_body = rfile.readline()
                    if not line_of_body:  # the client hung up instead
                        return
                    body += line_of_body
                self.bodies.append(body)
                reply = self.script[turn]["body"]
                conn.sendall(f"{reply}\r\n".encode())
                self.turn += reply.startswith("2")  # taken: no RSET follows


TRANSACTIONS = [
    # MAIL deferred: a pipelining client has RCPT and DATA in flight, refused in turn
    {"mail": "451 4.3.0 sender deferred", "rcpt": "503 5.5.1 need MAIL", "data": "503 5.5.1"},
    {"mail": "250 ok", "rcpt": "550 5.1.1 no such user", "data": "554 5.5.1 no recipients"},
    {"mail": "250 ok", "rcpt": "250 ok", "data": "354 go", "body": "250 queued as A1"},
    {"mail": "250 ok", "rcpt": "250 ok", "data": "451 4.3.2 not now"},  # DATA itself refused
    {"mail": "250 ok", "rcpt": "250 ok", "data": "354 go", "body": "552 5.3.4 too big"},
    {"mail": "250 ok", "rcpt": "250 ok", "data": "354 go", "body": "550 5.1.1 no such user"},
    {"mail": "250 ok", "rcpt": "250 ok", "data": "250 what"},  # a broken server: no 354
    {"mail": "250 ok", "rcpt": "250 ok", "data": "354 go", "body": "250 queued as A2"},
    {"mail": "250 ok", "rcpt": "554 5.7.1 relaying denied", "data": "554 5.5.1 no recipients"},
    {"mail": "250 ok", "rcpt": "250 ok", "data": "354 go", "body": "552 5.2.3 too long"},
    {"mail": "250 ok", "rcpt": "250 ok", "data": "354 go", "body": "550 no such user"},
    {"mail": "451 4.3.0 later", "rcpt": "503 5.5.1", "data": "503 5.5.1", "rset": "554 no"},
    {"mail": "250 ok", "rcpt": "250 ok", "data": "354 go", "body": "250 queued as A3"},
    {"mail": "552 5.3.4 too big for us", "rcpt": "503 5.5.1", "data": "503 5.5.1"},  # SIZE
    {"mail": "hello there", "rcpt": "250 ok", "data": "354 go"},  # not a reply: out of step
]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
def test_every_refusal_leaves_the_connection_ready_for_the_next_message(
    tmp_path: Path, pipelining: bool
) -> None:
    """Each refusal (MAIL, RCPT, DATA, the message) is that message's outcome, and the next
    message on the same connection reads its own replies: the replies still owed to pipelined
    commands are read and the transaction reset (also after a refused DATA, which smtplib
    leaves open). The message goes only after a 354. A refusal of the message itself counts
    as a bounce only when its status code says the mailbox (5.1.1, 5.2.2, ...; not 5.2.3).
    To a server that offers PIPELINING, MAIL, RCPT and DATA go in one write."""
    from newsletter.delivery.smtp import SMTPSession

    server = _ScriptedServer(TRANSACTIONS, pipelining)
    cfg = make_config(
        tmp_path,
        f'[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
        "timeout_seconds = 3\n",
    )
    session = SMTPSession(cfg)
    outcomes: list[tuple[str, ...]] = []
    try:
        for n in range(len(TRANSACTIONS)):
            raw = f"Subject: {n}\r\n\r\nmessage {n}\r\n".encode()
            try:
                session.send_raw(raw, "sender@example.org", [f"reader{n}@example.org"])
                outcomes.append(("sent",))
            except DeliveryError as exc:
                kind = "temporary" if exc.temporary else "bounce" if exc.bounce else "failed"
                outcomes.append((kind, exc.reply))
    finally:
        session.close()
    server.done.set()
    server.thread.join(5)
    assert server.error is None, server.error
    assert outcomes == [
        ("temporary", "451 4.3.0 sender deferred"),
        ("bounce", "550 5.1.1 no such user"),
        ("sent",),
        ("temporary", "451 4.3.2 not now"),
        ("failed", "552 5.3.4 too big"),
        ("bounce", "550 5.1.1 no such user"),
        ("temporary", "250 what"),
        ("sent",),
        ("failed", "554 5.7.1 relaying denied"),  # policy, not the mailbox: no bounce
        ("failed", "552 5.2.3 too long"),
        ("failed", "550 no such user"),  # after the message, with no status code
        ("temporary", "451 4.3.0 later"),  # and the reset is refused: a new connection
        ("sent",),
        ("failed", "552 5.3.4 too big for us"),  # this message's size, not our sender
        ("temporary", ""),  # the connection is dropped: its replies are no longer in step
    ]
    assert server.connections == 2
    assert server.bodies == [
        f"Subject: {n}\r\n\r\nmessage {n}\r\n.\r\n".encode() for n in (2, 4, 5, 7, 9, 10, 12)
    ]
    if pipelining:
        size = len("Subject: 0\r\n\r\nmessage 0\r\n")
        assert server.groups[0] == [
            f"mail FROM:<sender@example.org> size={size}",
            "rcpt TO:<reader0@example.org>",
            "data",
        ]
        assert all(len(g) == 3 for g in server.groups if g[0].startswith("mail"))


@PIPELINING_OR_NOT
def test_an_address_with_a_line_break_cannot_add_smtp_commands(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    """A line break in an envelope address would smuggle a command of its own into the
    pipelined group (or a lone command). An address no header could name either (control
    characters, a non-ASCII local part) is refused before anything is written: that message
    fails, counting toward the address's bounces (we can never deliver to it), and the
    connection goes on. An internationalised domain goes in its ASCII form."""
    from newsletter.delivery.smtp import ConnectionFailed, SMTPSession

    cfg = _cfg(tmp_path, smtp_server.port)
    session = SMTPSession(cfg)
    raw = b"Subject: x\r\n\r\nhello\r\n"
    refused = []
    try:
        for rcpt in (
            "a@example.org>\r\nRCPT TO:<victim@example.org",
            ",\r\nRCPT TO:<victim@example.org>",
            "ü@example.org",
            "b@bücher.example",  # an internationalised domain goes in its ASCII form
        ):
            try:
                session.send_raw(raw, "sender@example.org", [rcpt])
            except DeliveryError as exc:
                assert not exc.temporary and exc.bounce  # never deliverable by us
                refused.append(str(exc))
    finally:
        session.close()
    assert [r["to"] for r in smtp_server.received] == [["b@xn--bcher-kva.example"]]
    assert len(refused) == 3 and all("cannot be written in an SMTP command" in r for r in refused)
    unwritable_sender = SMTPSession(cfg)
    try:  # the sender's address: no message can go, so the run stops and fails nobody
        with pytest.raises(ConnectionFailed, match=r"check email\.from_address"):
            unwritable_sender.send_raw(raw, "dïgest@example.org", ["c@example.org"])
    finally:
        unwritable_sender.close()

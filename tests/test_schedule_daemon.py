"""`newsletter schedule` as a real subprocess against a real aiosmtpd and a real SQLite file."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.delivery.lock import run_lock
from newsletter.models import Interest, InterestKind, Paper, SendStatus, SubscriberStatus
from newsletter.store import Database
from tests.conftest import FIXTURES, SECRET, SMTPSink, _Handler, free_port

NEWSLETTER = Path(sys.executable).parent / "newsletter"
WAIT_LIMIT = 30.0  # an upper bound on waiting for the daemon, not a speed assertion


def write_config(tmp_path: Path, smtp: SMTPSink, smtp_extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[storage]
data_dir = "data"
database = "data/newsletter.db"
[site]
base_url = "http://127.0.0.1:8000"
name = "Test Digest"
postal_address = "1 Test Street"
[email]
from_address = "digest@example.org"
[smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
timeout_seconds = 10
{smtp_extra}
""",
        encoding="utf-8",
    )
    return path


def not_due_zone(now: datetime) -> str:
    """A zone where it is at most 21:00 now, so a 23:00 subscriber is certainly not due yet."""
    for tz in ("UTC", "Etc/GMT+12", "Etc/GMT-12", "Etc/GMT+6", "Etc/GMT-6"):
        if now.astimezone(ZoneInfo(tz)).hour <= 21:
            return tz
    raise AssertionError("no zone found")  # pragma: no cover - some zone is always early


def seed(db: Path, now: datetime) -> dict[str, int]:
    """Papers for the last days plus subscribers who are and are not due."""
    today = now.date()
    titles = [
        "Speculative decoding for large language models",
        "KV cache compression for long context transformers",
        "Diffusion models for protein structure",
    ]
    # Local dates run from yesterday (the Americas) to tomorrow (Kiritimati) in UTC terms:
    # every one of them gets a day of papers, including one the NY reader's interest matches.
    papers = [
        Paper(
            id=f"2611.{n:05d}",
            title=f"{title} ({day.isoformat()})",
            abstract=f"We study {title.lower()} with careful experiments. " * 4,
            authors=("Ada Lovelace", "Alan Turing"),
            categories=("cs.CL", "cs.LG"),
            announce_type="new",
            announced=day,
            hf_date=day,
            upvotes=50 - n,
            abs_url=f"https://arxiv.org/abs/2611.{n:05d}",
            pdf_url=f"https://arxiv.org/pdf/2611.{n:05d}",
            sources=("arxiv_rss", "huggingface"),
        )
        for n, (day, title) in enumerate(
            ((today + timedelta(days=d), t) for d in (-1, 0, 1) for t in titles), start=1
        )
    ]
    ids: dict[str, int] = {}
    with Database(db) as store:
        store.papers.upsert(papers, now)

        def add(email: str, tz: str, hour: int, status=SubscriberStatus.ACTIVE) -> int:
            sub, _ = store.subscribers.add(
                email, now, status=status, timezone=tz, delivery_hour=hour, digest_size=3
            )
            ids[email] = sub.id
            return sub.id

        add("utc@example.org", "UTC", 0)
        add("kiritimati@example.org", "Pacific/Kiritimati", 0)
        ny = add("ny@example.org", "America/New_York", 0)
        store.subscribers.add_interests(ny, [Interest(InterestKind.KEYWORD, "KV cache")], now)
        add("later@example.org", not_due_zone(now), 23)
        add("paused@example.org", "UTC", 0, SubscriberStatus.PAUSED)
        done = add("done@example.org", "UTC", 0)
        assert store.sends.claim(done, today, "<done@example.org>", now)
        store.sends.mark_sent(done, today, "<done@example.org>", ["2611.00001"], 1, now)
    return ids


def start_daemon(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    return subprocess.Popen(
        [str(NEWSLETTER), "--config", str(config), "schedule", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(predicate, what: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not predicate():
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"daemon exited ({proc.returncode}) before {what}:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            _out, err = proc.communicate()
            raise AssertionError(f"timed out waiting for {what}:\n{err}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=WAIT_LIMIT)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hang is the failure
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"daemon did not stop on SIGTERM:\n{err}") from None
    return proc.returncode, err


def recipients(sink: SMTPSink) -> list[str]:
    return sorted(str(m["To"]).split("<")[-1].rstrip(">") for m in sink.messages())


def passes(err_text: str) -> int:
    return err_text.count("send: nobody is due") + err_text.count("subscriber(s) due for")


def test_daemon_sends_each_due_subscriber_once_and_stops_on_sigterm(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    config = write_config(tmp_path, smtp_server)
    now = datetime.now(UTC)
    seed(tmp_path / "data" / "newsletter.db", now)
    proc = start_daemon(config, "--send-every", "1", "--no-fetch")
    wait_for(lambda: len(smtp_server.received) >= 3, "three digests", proc)
    # Let a few more send passes run: nobody may get a second digest.
    time.sleep(2.5)
    code, err = stop(proc)
    assert code == 0, err
    assert "scheduler started" in err
    assert "received SIGTERM" in err and "scheduler stopped cleanly" in err
    assert "Traceback" not in err
    assert passes(err) >= 3, err  # the start-up pass plus interval passes ran
    assert recipients(smtp_server) == [
        "kiritimati@example.org",
        "ny@example.org",
        "utc@example.org",
    ]
    for msg in smtp_server.messages():
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["Message-ID"] and msg["List-Unsubscribe-Post"]
    with Database(tmp_path / "data" / "newsletter.db") as store:
        kiri = store.subscribers.get_by_email("kiritimati@example.org")
        assert kiri is not None
        kiri_day = now.astimezone(ZoneInfo("Pacific/Kiritimati")).date()
        sent = store.sends.get(kiri.id, kiri_day)
        assert sent is not None and sent.status == SendStatus.SENT
        assert store.sends.with_status(SendStatus.CLAIMED, SendStatus.RETRY) == []


class _SlowHandler(_Handler):
    """Holds the first DATA for a moment, so SIGTERM arrives while a message is on the wire."""

    def __init__(self, sink: SMTPSink, in_flight: threading.Event) -> None:
        super().__init__(sink)
        self.in_flight = in_flight

    async def handle_DATA(self, server, session, envelope):
        if not self.in_flight.is_set():  # hold the first message only
            self.in_flight.set()
            await asyncio.sleep(0.5)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp() -> Iterator[tuple[SMTPSink, threading.Event]]:
    from aiosmtpd.controller import Controller

    sink = SMTPSink("127.0.0.1", free_port())
    in_flight = threading.Event()
    controller = Controller(
        _SlowHandler(sink, in_flight), hostname="127.0.0.1", port=sink.port, decode_data=False
    )
    controller.start()
    try:
        yield sink, in_flight
    finally:
        controller.stop()


def test_sigterm_mid_send_finishes_the_message_and_loses_nobody(
    tmp_path: Path, slow_smtp: tuple[SMTPSink, threading.Event]
) -> None:
    sink, in_flight = slow_smtp
    config = write_config(tmp_path, sink)
    now = datetime.now(UTC)
    db = tmp_path / "data" / "newsletter.db"
    seed(db, now)
    with Database(db) as store:
        for i in range(6):
            # Same zone as ny@: the first digest date sent holds seven subscribers.
            store.subscribers.add(
                f"bulk{i}@example.org",
                now,
                status=SubscriberStatus.ACTIVE,
                timezone="America/New_York",
                delivery_hour=0,
            )
    proc = start_daemon(config, "--no-fetch")
    wait_for(in_flight.is_set, "a message on the wire", proc)
    code, err = stop(proc)
    assert code == 0, err
    assert "scheduler stopped cleanly" in err
    received = recipients(sink)
    # The message on the wire when SIGTERM came is completed; no further one is started.
    assert len(received) == 1, err
    assert "shutdown requested (SIGTERM or Ctrl-C)" in err
    for msg in sink.messages():  # every message that arrived is whole
        assert msg.get_content_type() == "multipart/alternative"
        assert len(msg.get_payload()) == 2
    with Database(db) as store:
        emails = {s.id: s.email for s in store.subscribers.list()}
        sent = {emails[r.subscriber_id] for r in store.sends.with_status(SendStatus.SENT)}
        # What arrived is recorded as sent, and only that; nothing is left half-done.
        assert sent - {"done@example.org"} == set(received)
        assert store.sends.with_status(SendStatus.CLAIMED) == []
    # A restart sends the rest, and nobody twice.
    proc = start_daemon(config, "--no-fetch", "--send-every", "1")
    wait_for(lambda: len(sink.received) >= 9, "the remaining digests", proc)
    time.sleep(1.5)
    code, err = stop(proc)
    assert code == 0, err
    final = recipients(sink)
    assert len(final) == len(set(final)) == 9  # 3 seeded + 6 bulk, each exactly once


def test_send_pass_waits_for_the_shared_lock(tmp_path: Path, smtp_server: SMTPSink) -> None:
    config = write_config(tmp_path, smtp_server)
    now = datetime.now(UTC)
    seed(tmp_path / "data" / "newsletter.db", now)
    cfg = load_config(str(config))
    with run_lock(cfg, "test holds the lock"):
        proc = start_daemon(config, "--send-every", "1", "--no-fetch")
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True
        )
        reader.start()
        wait_for(lambda: any("skipped this pass" in x for x in lines), "a locked pass", proc)
        assert smtp_server.received == []
    wait_for(lambda: len(smtp_server.received) >= 3, "digests after the lock is free", proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=WAIT_LIMIT) == 0
    reader.join(timeout=WAIT_LIMIT)
    text = "".join(lines)
    assert "another newsletter run holds" in text and "test holds the lock" in text
    assert len(recipients(smtp_server)) == 3


def run_once(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    cmd = [str(NEWSLETTER), "--config", str(config), "schedule", "--once", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=WAIT_LIMIT)


def test_once_sends_due_subscribers_and_exits(tmp_path: Path, smtp_server: SMTPSink) -> None:
    seed(tmp_path / "data" / "newsletter.db", datetime.now(UTC))
    # The relay is down: the pass fails, exits 1, and loses nobody.
    down = SMTPSink("127.0.0.1", free_port())
    fast = "max_attempts = 1\nretry_backoff_seconds = 0.1"
    failed = run_once(write_config(tmp_path, down, fast), "--no-fetch")
    assert failed.returncode == 1, failed.stderr
    assert "cannot connect to the SMTP server" in failed.stderr
    assert "schedule --once: done with" in failed.stderr and "Traceback" not in failed.stderr
    # The relay is back: everyone due is sent, once.
    config = write_config(tmp_path, smtp_server)
    result = run_once(config, "--no-fetch")
    assert result.returncode == 0, result.stderr
    assert len(recipients(smtp_server)) == 3
    again = run_once(config, "--no-fetch")
    assert again.returncode == 0, again.stderr
    assert "nobody is due" in again.stderr
    assert len(recipients(smtp_server)) == 3  # nobody twice


def test_schedule_help_documents_the_options() -> None:
    result = CliRunner().invoke(cli, ["schedule", "--help"])
    assert result.exit_code == 0
    for option in ("--once", "--no-fetch", "--send-every", "--fetch-every", "SIGTERM"):
        assert option in result.output


def test_bad_fetch_times_is_a_clean_error(tmp_path: Path, smtp_server: SMTPSink) -> None:
    config = write_config(tmp_path, smtp_server)
    config.write_text(
        config.read_text() + '[schedule]\nfetch_times = ["half past midnight"]\n', "utf-8"
    )
    result = run_once(config)
    assert result.returncode == 1
    assert "schedule.fetch_times" in result.stderr and "Traceback" not in result.stderr


class _FeedServer(ThreadingHTTPServer):
    """A local stand-in for rss.arxiv.org and the HF API serving recorded bodies."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        rss = (FIXTURES / "arxiv_rss" / "rss_quant-ph_2025-04-28.xml").read_bytes()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(handler) -> None:  # `self` is the server here
                self.paths.append(handler.path)
                body, kind = (
                    (rss, "application/rss+xml")
                    if handler.path.startswith("/rss/")
                    else (b"[]", "application/json")
                )
                handler.send_response(200)
                handler.send_header("Content-Type", kind)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_once_fetches_when_a_scheduled_fetch_was_missed_then_sends(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    feeds = _FeedServer()
    threading.Thread(target=feeds.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{feeds.server_address[1]}"
        config = write_config(tmp_path, smtp_server)
        config.write_text(
            config.read_text()
            + f'[sources]\narxiv_rss_url = "{base}/rss"\n'
            + f'huggingface_url = "{base}/api/daily_papers"\ncontact_email = "ops@example.org"\n',
            "utf-8",
        )
        db = tmp_path / "data" / "newsletter.db"
        with Database(db) as store:
            store.subscribers.add(
                "reader@example.org",
                datetime.now(UTC),
                status=SubscriberStatus.ACTIVE,
                delivery_hour=0,
            )
        first = run_once(config)
        assert first.returncode == 0, first.stderr
        assert "fetch: starting" in first.stderr
        assert any(p.startswith("/rss/") for p in feeds.paths)
        with Database(db) as store:
            assert store.papers.count() > 0
            fetch_run = store.runs.last_successful("fetch")
            assert fetch_run is not None and fetch_run.outcome == "ok"
            # The recorded feed is from 2025: nothing in the reader's window, said and recorded.
            sub = store.subscribers.get_by_email("reader@example.org")
            assert sub is not None
            rows = store.sends.with_status(SendStatus.SKIPPED)
            assert [r.subscriber_id for r in rows] == [sub.id]
        assert smtp_server.received == []
        # The fetch just ran: a second pass does not fetch again, and settles nobody twice.
        asked = len(feeds.paths)
        second = run_once(config)
        assert second.returncode == 0, second.stderr
        assert "fetch: starting" not in second.stderr
        assert len(feeds.paths) == asked
        assert "nobody is due" in second.stderr
    finally:
        feeds.shutdown()
        feeds.server_close()


def test_the_daemon_refuses_to_start_without_what_every_pass_needs(
    tmp_path: Path, smtp_server: SMTPSink
) -> None:
    """No signing key, or a database that cannot be opened: one line and exit 1 at start-up,
    not a daemon that runs (systemd: active) and fails each pass in its log."""
    config = write_config(tmp_path, smtp_server)
    env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_SECRET_KEY"}
    cmd = [str(NEWSLETTER), "--config", str(config), "schedule", "--no-fetch"]
    keyless = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=WAIT_LIMIT)
    assert keyless.returncode == 1 and "NEWSLETTER_SECRET_KEY is not set" in keyless.stderr
    assert "Traceback" not in keyless.stderr and "scheduler started" not in keyless.stderr
    (tmp_path / "folder").mkdir()
    text = config.read_text()
    config.write_text(text.replace('database = "data/newsletter.db"', 'database = "folder"'))
    assert 'database = "folder"' in config.read_text()
    env["NEWSLETTER_SECRET_KEY"] = SECRET
    no_db = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=WAIT_LIMIT)
    assert no_db.returncode == 1 and "cannot open the database" in no_db.stderr, no_db.stderr

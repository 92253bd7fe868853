"""kill -9 in the middle of a send (of the sending process, then rerun; or of a process
building messages): one digest per subscriber, nobody skipped."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from newsletter import pipeline
from newsletter.config import load_config
from newsletter.delivery import mailer_from_config
from newsletter.models import SendStatus
from newsletter.render.renderer import Renderer
from newsletter.store import Database
from tests.conftest import SECRET, free_port
from tests.test_send import DAY, DEMO_DAY, seed, write_config

NEWSLETTER = str(Path(sys.executable).parent / "newsletter")
READERS = {f"reader{i:02d}@example.org": (f"Reader {i}", ["quantization"]) for i in range(24)}


class SlowSink:
    """Records each message on arrival, then waits before answering 250 (a slow relay), so a
    kill can land before, during or after any acknowledgement."""

    def __init__(self) -> None:
        self.delay = 0.12
        self.received: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.received.append((rcpt, str(msg["Message-ID"])))
        await asyncio.sleep(self.delay)
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@contextmanager
def slow_sink(delay: float = 0.12) -> Iterator[tuple[SlowSink, int]]:
    """A real aiosmtpd on 127.0.0.1 answering each message after `delay` s; yields it and its
    port."""
    sink = SlowSink()
    sink.delay = delay
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def run_send(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [NEWSLETTER, "--config", str(config), "send", "--date", DAY],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NEWSLETTER_SECRET_KEY": SECRET},
    )


def test_kill_9_mid_batch_then_rerun_delivers_one_digest_each(tmp_path: Path) -> None:
    with slow_sink() as (sink, port):
        config = write_config(tmp_path, port, "connections = 2\n")
        seed(config, READERS)

        first = run_send(config)
        deadline = time.monotonic() + 60
        while sink.count() < 8 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.01)
        assert first.poll() is None, "the send finished before it could be killed"
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        killed_at = sink.count()
        assert 8 <= killed_at < len(READERS)

        sink.delay = 0.0
        second = run_send(config)
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 0, output

    by_rcpt: dict[str, set[str]] = {}
    for rcpt, message_id in sink.received:
        by_rcpt.setdefault(rcpt, set()).add(message_id)
    assert sorted(by_rcpt) == sorted(READERS)  # nobody skipped
    assert all(len(ids) == 1 for ids in by_rcpt.values())  # one digest each
    # Copies beyond one per reader can only be acknowledgements lost to the kill, at most
    # one per connection, and they carry the first attempt's Message-ID (checked above).
    assert len(sink.received) - len(READERS) <= 2
    already = int(output.split("skipped ")[1].split(" already sent")[0])
    assert already >= killed_at - 2
    cfg = load_config(str(config))
    with Database(cfg.database_path) as store:
        rows = store.sends.on(DEMO_DAY)
    assert len(rows) == len(READERS) and all(r.status == SendStatus.SENT for r in rows)


class KillsItsWorkerOnce(Renderer):
    """Renders as usual, except that the first building process to reach reader05's digest
    kills itself with SIGKILL (once per run: it takes the marker file away first)."""

    def for_digest(self, digest, *, first):  # type: ignore[no-untyped-def]
        marker = Path(self.cfg.database_path).parent / "kill-a-worker"
        if digest.subscriber.email == "reader05@example.org":
            try:
                marker.unlink()
            except FileNotFoundError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return super().for_digest(digest, first=first)


def test_kill_9_of_a_building_process_loses_no_digest_and_sends_none_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", SECRET)
    with slow_sink(0.0) as (sink, port):
        config = write_config(tmp_path, port, "connections = 2\n")
        seed(config, READERS)
        cfg = load_config(str(config))
        marker = Path(cfg.database_path).parent / "kill-a-worker"
        marker.touch()
        with Database(cfg.database_path) as store:
            ctx = pipeline.Context(store, cfg, mailer=mailer_from_config(cfg))
            ctx.renderer = KillsItsWorkerOnce(cfg)
            summary = pipeline.send_daily(ctx, DEMO_DAY)
            assert not marker.exists()  # a building process did kill itself
            assert (summary.sent, summary.retry, summary.failed) == (len(READERS), 0, 0)
            again = pipeline.send_daily(ctx, DEMO_DAY)
            assert (again.sent, again.already_sent) == (0, len(READERS))
            rows = store.sends.on(DEMO_DAY)
    by_rcpt: dict[str, list[str]] = {}
    for rcpt, message_id in sink.received:
        by_rcpt.setdefault(rcpt, []).append(message_id)
    assert sorted(by_rcpt) == sorted(READERS)
    assert all(len(ids) == 1 for ids in by_rcpt.values())  # exactly one digest each
    assert len(rows) == len(READERS) and all(r.status == SendStatus.SENT for r in rows)
    assert {r.message_id for r in rows} == {ids[0] for ids in by_rcpt.values()}

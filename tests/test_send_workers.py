"""Send workers sharing one PostgreSQL store, against a real aiosmtpd: three workers and 300
readers, one worker killed with `kill -9` mid-batch, and `--workers N` on one machine."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from newsletter.config import load_config
from newsletter.models import SendStatus
from newsletter.store import Database
from tests.conftest import SECRET
from tests.test_send import DAY, DEMO_DAY, seed, write_config
from tests.test_send_crash import NEWSLETTER, SlowSink, slow_sink

READERS = {f"reader{i:03d}@example.org": (f"Reader {i}", ["quantization"]) for i in range(300)}
# Short leases so the test waits seconds, not the default ten minutes, for a dead worker's rows.
SHARED = "[storage]\nsend_batch = 20\nsend_lease_seconds = 10\n"


def _config(tmp_path: Path, port: int, url: str) -> Path:
    path = write_config(tmp_path, port, "connections = 1\n", database=url)
    text = path.read_text(encoding="utf-8").replace("[storage]\n", SHARED, 1)
    path.write_text(text, encoding="utf-8")
    seed(path, READERS)
    return path


def _start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [NEWSLETTER, "--config", str(config), "send", "--date", DAY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NEWSLETTER_SECRET_KEY": SECRET},
    )


def _by_reader(sink: SlowSink) -> dict[str, set[str]]:
    by_rcpt: dict[str, set[str]] = {}
    for rcpt, message_id in sink.received:
        by_rcpt.setdefault(rcpt, set()).add(message_id)
    return by_rcpt


def _ledger(config: Path) -> list[Any]:
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        return store.sends.on(DEMO_DAY)


def _held_by(config: Path, pid: int) -> int:
    """How many rows the worker with `pid` holds right now."""
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        return sum(w.holding for w in store.claims.workers() if w.pid == pid)


@contextmanager
def _sink(tmp_path: Path, pg_url: str, delay: float) -> Iterator[tuple[SlowSink, Path]]:
    """A real aiosmtpd sink answering after `delay` s, and a seeded config sending to it."""
    with slow_sink(delay) as (sink, port):
        yield sink, _config(tmp_path, port, pg_url)


def test_kill_9_one_of_three_workers_mid_batch(tmp_path: Path, pg_url: str) -> None:
    with _sink(tmp_path, pg_url, 0.01) as (sink, config):
        workers = [_start(config) for _ in range(3)]
        victim = workers[0]
        deadline = time.monotonic() + 120
        # Kill once the victim holds a batch and mail is flowing: mid-batch.
        while time.monotonic() < deadline and victim.poll() is None:
            if sink.count() >= 40 and _held_by(config, victim.pid) > 0:
                break
            time.sleep(0.02)
        assert victim.poll() is None, "the worker finished before it could be killed"
        os.kill(victim.pid, signal.SIGKILL)
        victim.communicate(timeout=30)
        outputs = [w.communicate(timeout=240)[0] for w in workers[1:]]
        assert [w.returncode for w in workers[1:]] == [0, 0], outputs

    by_rcpt = _by_reader(sink)
    assert sorted(by_rcpt) == sorted(READERS)  # nobody skipped, the dead worker's batch too
    assert all(len(ids) == 1 for ids in by_rcpt.values())  # a resend keeps its Message-ID
    # One connection per worker: at most one acknowledgement lost to the kill.
    assert len(sink.received) - len(READERS) <= 1
    rows = _ledger(config)
    assert len(rows) == len(READERS) and all(r.status == SendStatus.SENT for r in rows)
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        counts = store.claims.counts(DEMO_DAY, time.time())
        assert (counts.queued, counts.claimed, counts.expired, counts.done) == (0, 0, 0, 300)
        finished = [w for w in store.claims.workers() if w.finished_at]
        assert len(finished) == 2 and sum(w.sent for w in finished) >= 300 - 40


def test_workers_option_shares_the_day_on_one_machine(tmp_path: Path, pg_url: str) -> None:
    with _sink(tmp_path, pg_url, 0.0) as (sink, config):
        run = _start(config, "--workers", "3")
        output, _ = run.communicate(timeout=240)
        assert run.returncode == 0, output
    assert "3 workers sent 300 digests" in output
    assert output.count("worker ") >= 3
    assert len(sink.received) == len(READERS)
    assert all(len(ids) == 1 for ids in _by_reader(sink).values())
    cfg = load_config(str(config))
    with Database(cfg.database) as store:
        senders = [w for w in store.claims.workers() if w.sent]
    assert len(senders) >= 2  # the work was shared, not done by one


def test_a_batch_slower_than_its_lease_stays_with_its_worker(tmp_path: Path, pg_url: str) -> None:
    """A slow relay makes one batch outlast its lease (14 s against 10 s): the worker sending it
    renews the lease, so a second worker waits instead of taking the batch and mailing it again."""
    readers = {f"slow{i:02d}@example.org": (f"Slow {i}", ["quantization"]) for i in range(12)}
    with slow_sink(1.2) as (sink, port):
        config = write_config(tmp_path, port, "connections = 1\n", database=pg_url)
        text = config.read_text(encoding="utf-8")
        shared = "[storage]\nsend_batch = 20\nsend_lease_seconds = 10\n"
        config.write_text(text.replace("[storage]\n", shared, 1), encoding="utf-8")
        seed(config, readers)
        first = _start(config)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _held_by(config, first.pid) == 0:
            time.sleep(0.05)
        assert _held_by(config, first.pid) == 12, "the first worker never took the batch"
        second = _start(config)
        outputs = [w.communicate(timeout=120)[0] for w in (first, second)]
        assert [w.returncode for w in (first, second)] == [0, 0], outputs
    assert len(sink.received) == len(readers)  # nothing sent twice
    assert sorted(_by_reader(sink)) == sorted(readers)

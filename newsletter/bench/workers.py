"""Send workers benchmark: 1, 2 and 4 workers sharing one PostgreSQL store.

A private PostgreSQL server (store/pg_server.py) holds N subscribers and the demo's papers, once;
each run sends the whole day from a fresh clone of that database with `newsletter send
--workers K`'s code path (`send_workers.run_workers`: K processes, one shared queue) to Postfix's
`smtp-sink` (aiosmtpd in a separate process when smtp-sink is absent). Prints messages per
second for each K (from the first worker's start of sending to the last one's end, and the
wall time with process start-up) and the ratio to one worker. Rates on a loaded machine are
noisy; the ratios, measured in one run, are what to compare.

    python -m newsletter.bench workers        # or: make bench
    NEWSLETTER_BENCH_WORKERS=1000 python -m newsletter.bench workers   # a quicker run
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from newsletter.bench.send import _populate
from newsletter.bench.sinks import Sink
from newsletter.config import Config, parse_config
from newsletter.demo import DEMO_DAY
from newsletter.store import Database
from newsletter.store.pg_server import PostgresServer, running_postgres

COUNTS = (1, 2, 4)


def _config(root: Path, url: str, port: int) -> Config:
    text = (
        f'[storage]\ndata_dir = "data"\ndatabase = "{url}"\nsend_batch = 200\n'
        '[site]\nbase_url = "https://papers.example.org"\nname = "Paper Digest"\n'
        'postal_address = "1 Example Street"\n'
        '[email]\nunsubscribe_mailto = "unsubscribe@example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nconnections = 1\n'
    )
    return parse_config(text, base_dir=root, env={"NEWSLETTER_SECRET_KEY": "bench-" * 6})


def _populated(server: PostgresServer, root: Path, port: int, n: int) -> str:
    """A database with the demo day and `n` subscribers, closed so it can be a template."""
    from newsletter.store.postgres import close_pools

    url = server.new_database()
    cfg = _config(root, url, port)
    with Database(cfg.database) as store:
        _populate(store, cfg, n)
    close_pools(url)
    return url.split("?", 1)[0].rsplit("/", 1)[1]


def _sending_seconds(url: str) -> float:
    """From the first worker's start of sending to the last one's end (the runs table): the
    steady rate, without starting Python processes."""
    from newsletter.store.postgres import close_pools

    with Database(url) as store:
        runs = store.runs.last("send", limit=100)
    close_pools(url)
    start = min(r.started_at for r in runs)
    end = max(r.finished_at or r.started_at for r in runs)
    return max((end - start).total_seconds(), 1e-3)


def run() -> None:
    from newsletter import send_workers

    n = int(os.environ.get("NEWSLETTER_BENCH_WORKERS", "4000"))
    with running_postgres() as server:
        if isinstance(server, str):
            print(f"  skipped: {server}")
            return
        root = server.root / "bench"
        root.mkdir()
        sink = Sink()
        port = sink.port
        try:
            t0 = time.perf_counter()
            template = _populated(server, root, port, n)
            print(f"  {n:,} subscribers into PostgreSQL in {time.perf_counter() - t0:.1f} s")
            print(f"  sink: {sink.name} (another process); one SMTP connection per worker")
            rates: dict[int, float] = {}
            for k in COUNTS:
                url = server.url(f"bench_{k}")
                server.admin(f"CREATE DATABASE bench_{k} TEMPLATE {template}")
                cfg = _config(root, url, port)
                t0 = time.perf_counter()
                summaries = send_workers.run_workers(cfg, DEMO_DAY, k)
                seconds = time.perf_counter() - t0
                sent = sum(s.sent for s in summaries)
                sending = _sending_seconds(url)
                rates[k] = sent / sending
                print(
                    f"  {k} worker(s): {sent:,} digests, {sending:.1f} s sending"
                    f" ({seconds:.1f} s with process start-up) = {rates[k]:,.1f} msg/s"
                    f" ({rates[k] / k:,.1f} per worker), {rates[k] / rates[COUNTS[0]]:.2f}×"
                    " one worker"
                )
                server.drop_database(url)
        finally:
            sink.close()
            shutil.rmtree(root, ignore_errors=True)

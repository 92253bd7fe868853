"""Send benchmark: the whole daily send against the SMTP transport's own ceiling.

An aiosmtpd sink runs in a separate process. In one run we
1. send N digests the real way: `pipeline.send_daily` ranks, renders, builds MIME, claims and
   records every message in the SQLite ledger and sends over SMTP, and
2. blast N pre-built digests of the same size through the same sink over the same number of
   connections (plain smtplib, nothing else: the transport's ceiling), half before and half
   after step 1,
and print both rates and their ratio (target: at least 0.7). NEWSLETTER_BENCH_CONNECTIONS sets
the connection count (default 2, one per core of the reference machine).

    python -m newsletter.bench send           # or: make bench
    NEWSLETTER_BENCH_SEND=2000 python -m newsletter.bench send   # a quicker run
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsletter.config import Config, parse_config
from newsletter.delivery.smtp import SMTPMailer, SMTPSession
from newsletter.demo import DEMO_DAY, DEMO_NOW, FEED, offline_transport
from newsletter.models import Interest, InterestKind, SubscriberStatus
from newsletter.store import Database

TOPICS = (
    "large language models",
    "quantization",
    "KV cache",
    "speculative decoding",
    "diffusion models",
    "image segmentation",
    "speech recognition",
    "federated learning",
    "reinforcement learning",
    "graph neural networks",
    "state space models",
    "mixture of experts",
    "knowledge distillation",
    "pruning",
    "video generation",
    "retrieval augmented generation",
    "medical imaging",
    "neural architecture search",
)
CATEGORIES = ("cs.LG", "cs.CL", "cs.CV")


# ---------------------------------------------------------------- the sink (separate process)


def sink_main(port: int) -> None:
    """Run an aiosmtpd sink that accepts and discards everything (`python -c` entry point)."""
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        controller.stop()


def _start_sink(port: int) -> subprocess.Popen[str]:
    code = f"from newsletter.bench.send import sink_main; sink_main({port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError("the SMTP sink process did not start")
    return proc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- set-up


def _config(root: Path, port: int, connections: int) -> Config:
    text = (
        '[storage]\ndata_dir = "data"\ndatabase = "data/bench.db"\n'
        '[site]\nbase_url = "https://papers.example.org"\nname = "Paper Digest"\n'
        'postal_address = "1 Example Street"\n'
        '[email]\nunsubscribe_mailto = "unsubscribe@example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f"connections = {connections}\n"
    )
    return parse_config(text, base_dir=root, env={"NEWSLETTER_SECRET_KEY": "bench-" * 6})


def _populate(store: Database, cfg: Config, n: int) -> None:
    from newsletter import pipeline

    offline = pipeline.Context(store, cfg, clock=lambda: DEMO_NOW, transport=offline_transport())
    pipeline.fetcher(offline).today(DEMO_DAY)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        sub, _ = store.subscribers.add(
            f"reader{i:05d}@example.org",
            now,
            name=f"Reader {i}",
            status=SubscriberStatus.ACTIVE,
        )
        interests = [
            Interest(InterestKind.KEYWORD, TOPICS[(i * 7 + k * 5) % len(TOPICS)])
            for k in range(1 + i % 3)
        ]
        if i % 4 == 0:
            interests.append(Interest(InterestKind.CATEGORY, CATEGORIES[i % 3]))
        store.subscribers.add_interests(sub.id, interests, now)


# ---------------------------------------------------------------- the two measurements


def _ceiling(cfg: Config, messages: list[tuple[bytes, str]]) -> float:
    """Seconds to send `messages` over `cfg.smtp.connections` connections, nothing but smtplib."""
    queue = list(messages)
    lock = threading.Lock()

    def work() -> None:
        session = SMTPSession(cfg)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    raw, rcpt = queue.pop()
                session.send_raw(raw, cfg.email.from_address, [rcpt])
        finally:
            session.close()

    threads = [threading.Thread(target=work) for _ in range(cfg.smtp.connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def _prebuilt(sample: list[bytes], n: int) -> list[tuple[bytes, str]]:
    return [(sample[i % len(sample)], f"reader{i:05d}@example.org") for i in range(n)]


def run() -> None:
    from newsletter import pipeline

    n = int(os.environ.get("NEWSLETTER_BENCH_SEND", "10000"))
    connections = int(os.environ.get("NEWSLETTER_BENCH_CONNECTIONS", "2"))
    port = _free_port()
    sink = _start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            cfg = _config(root, port, connections)
            with Database(cfg.database, password=cfg.database_password) as store:
                t0 = time.perf_counter()
                _populate(store, cfg, n)
                print(
                    f"set-up: {n:,} subscribers, {store.papers.count():,} papers from "
                    f"{FEED.name} ({time.perf_counter() - t0:.1f} s)",
                    flush=True,
                )
                sample = _sample(store, cfg)
                size = sum(len(s) for s in sample) / len(sample)
                print(f"digest size: {size / 1024:.1f} KB on average (sample of {len(sample)})")

                # The ceiling is measured in two halves, before and after the real send, so
                # a machine that gets busier or quieter meanwhile shifts both sides alike.
                blast = _prebuilt(sample, n)
                before = _ceiling(cfg, blast[: n // 2])
                start = time.perf_counter()
                ctx = pipeline.Context(store, cfg, mailer=SMTPMailer(cfg))
                summary = pipeline.send_daily(ctx, DEMO_DAY)
                elapsed = time.perf_counter() - start
                after = _ceiling(cfg, blast[n // 2 :])
                stages = _stages(store, cfg, min(n, 1000))
        ceiling = n / (before + after)
        print(
            f"transport ceiling: {ceiling:,.0f} msg/s ({n:,} pre-built messages of the same "
            f"size, half before and half after the send; {connections} connection(s), "
            "aiosmtpd sink in another process)"
        )
        rate = summary.sent / elapsed
        print(
            f"send_daily: {rate:,.0f} msg/s ({summary.sent:,} digests ranked, rendered, built, "
            f"claimed and recorded in the ledger and sent in {elapsed:.1f} s)"
        )
        print(f"send ratio: {rate / ceiling:.2f} of the transport ceiling (target >= 0.7)")
        print(
            "where one digest's time goes (ms, one thread, no SMTP): "
            + " · ".join(f"{name} {ms:.2f}" for name, ms in stages.items())
            + f" · total {sum(stages.values()):.2f} (the sink: {1000 / ceiling:.2f} per message)"
        )
    finally:
        sink.communicate("", timeout=30)


def _stages(store: Database, cfg: Config, n: int) -> dict[str, float]:
    """Milliseconds per digest for each stage of the send, measured one after the other."""
    from datetime import timedelta

    from newsletter import pipeline
    from newsletter.delivery.mime import message_id_for, render_bytes
    from newsletter.render.renderer import Renderer

    day = DEMO_DAY + timedelta(days=1)  # a fresh digest date: the ledger rows are new
    subs = store.subscribers.list()[:n]
    renderer = Renderer(cfg)
    t0 = time.perf_counter()
    digests = [
        d for d in pipeline.build_digests(pipeline.Context(store, cfg), DEMO_DAY, subs) if d.picks
    ]
    t1 = time.perf_counter()
    rendered = [renderer.digest(d) for d in digests]
    t2 = time.perf_counter()
    ids = [message_id_for(cfg, d.subscriber.id, day) for d in digests]
    for d, r, mid in zip(digests, rendered, ids, strict=True):
        render_bytes(cfg, d.subscriber, r, message_id=mid, digest_date=day, now=DEMO_NOW)
    t3 = time.perf_counter()
    for d, mid in zip(digests, ids, strict=True):
        store.sends.claim(d.subscriber.id, day, mid, DEMO_NOW)
        store.sends.mark_sent(d.subscriber.id, day, mid, d.paper_ids, 1, DEMO_NOW)
    t4 = time.perf_counter()
    k = 1000 / max(len(digests), 1)
    return {
        "rank": (t1 - t0) * k,
        "render": (t2 - t1) * k,
        "MIME": (t3 - t2) * k,
        "ledger": (t4 - t3) * k,
    }


def _sample(store: Database, cfg: Config, n: int = 50) -> list[bytes]:
    """Real digests for the first `n` subscribers, built but not sent (nothing recorded)."""
    from newsletter import pipeline
    from newsletter.delivery.mime import message_id_for, render_bytes
    from newsletter.render.renderer import Renderer

    renderer = Renderer(cfg)
    subs = store.subscribers.list()[:n]
    return [
        render_bytes(
            cfg,
            d.subscriber,
            renderer.digest(d),
            message_id=message_id_for(cfg, d.subscriber.id, DEMO_DAY),
            digest_date=DEMO_DAY,
            now=DEMO_NOW,
        )
        for d in pipeline.build_digests(pipeline.Context(store, cfg), DEMO_DAY, subs)
        if d.picks
    ]

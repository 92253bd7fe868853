"""Send benchmark: the whole daily send against the SMTP transport's own ceiling.

The sink runs in another process: Postfix's `smtp-sink` (C; Debian package `postfix`), the
real ceiling, and then aiosmtpd (Python, itself slower than our side) for comparison with
older figures; only aiosmtpd when smtp-sink is not installed (`--sink smtp-sink|aiosmtpd|both`
picks; the output says which). For each sink and for 1, 2 and 4 connections, in one run, we
1. send N digests the real way: `pipeline.send_daily` ranks, renders, builds MIME (in the
   `delivery.build_processes` worker processes), claims and records every message in the
   SQLite ledger and sends over SMTP, and
2. blast N pre-built digests of the same size through the same sink over the same number of
   connections (our SMTP session alone, pipelined where the sink offers it: the transport's
   ceiling), half before and half after step 1,
and print both rates, their ratio (target: at least 0.6 with 2 connections), the digest size
and the peak memory (the sending process and its workers together).

    python -m newsletter.bench send                          # or: make bench
    python -m newsletter.bench send --subscribers 100000 --connections 2 --sink smtp-sink
                                                             # the memory bound
    NEWSLETTER_BENCH_SEND=2000 python -m newsletter.bench send   # a quicker run
    python -m newsletter.bench send --history 365 --connections 2 --sink smtp-sink
                                                             # after a year of digests
    python -m newsletter.bench send --rtt 20 --connections 1,4,16 --sink smtp-sink
                                                             # a relay 20 ms away
"""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from newsletter.bench import flag_values
from newsletter.bench.latency import Distant
from newsletter.bench.sinks import Sink, smtp_sink_path
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


def _history(store: Database, days: int) -> int:
    """`days` earlier digests for every subscriber, as the ledger holds them after that many
    days of sending: 13 papers each, with IDs of the month they were sent in, numbered below
    the bundled feed's (2610.95xxx and up), so none of them is one of the day's papers.
    Returns the rows written. SQLite only (the bench's store): `?5` is the row's 5th value."""
    ids = [s.id for s in store.subscribers.list()]
    rows = 0
    with store.transaction():
        for back in range(1, days + 1):
            day = DEMO_DAY - timedelta(days=back)
            at = datetime.combine(day, DEMO_NOW.timetz()).isoformat()
            batch = [
                (
                    sid,
                    day.isoformat(),
                    f"<{sid}.{day}@bench>",
                    json.dumps(
                        [f"{day:%y%m}.{(sid * 131 + back * 17 + k) % 90000:05d}" for k in range(13)]
                    ),
                    at,
                )
                for sid in ids
            ]
            store.conn.executemany(
                "INSERT INTO sends (subscriber_id, digest_date, status, attempts, message_id,"
                " paper_ids, claimed_at, sent_at, updated_at) VALUES (?, ?, 'sent', 1, ?, ?,"
                " ?5, ?5, ?5)",
                batch,
            )
            rows += len(batch)
    return rows


# ---------------------------------------------------------------- the two measurements


def _ceiling(cfg: Config, messages: list[tuple[bytes, str]], seen: set[bool]) -> float:
    """Seconds to send `messages` over `cfg.smtp.connections` connections, nothing but the SMTP
    session (pipelined where the sink offers it, as `send_daily`'s); `seen` gets whether the
    sink offered PIPELINING."""
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
                if session.smtp is not None:
                    seen.add(bool(session.smtp.has_extn("pipelining")))
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


SINKS = {"smtp-sink": (True,), "aiosmtpd": (False,), "both": (True, False)}
USAGE = (
    "usage: send [--subscribers N] [--connections 1,2,4] [--sink smtp-sink|aiosmtpd|both]"
    " [--history DAYS] [--rtt MS]"
)


def _options(argv: list[str]) -> tuple[int, list[int], tuple[bool, ...], int, float]:
    """Subscribers, connection counts, the sinks to use (True: smtp-sink if installed), the
    days of earlier digests each subscriber has in the ledger, and the round trip to the sinks
    in milliseconds (0: as they are, on this machine)."""
    n = int(os.environ.get("NEWSLETTER_BENCH_SEND", "4000"))
    conns = os.environ.get("NEWSLETTER_BENCH_CONNECTIONS", "1,2,4")
    given = flag_values(
        argv, ("--subscribers", "--connections", "--sink", "--history", "--rtt"), USAGE
    )
    n = int(given.get("--subscribers", n))
    conns = given.get("--connections", conns)
    sink = given.get("--sink", "both")
    if sink not in SINKS:
        raise SystemExit(USAGE)
    prefer = SINKS[sink] if smtp_sink_path() is not None else (False,)
    history = given.get("--history", "0")
    if not history.isdigit():
        raise SystemExit(USAGE)
    try:
        rtt = float(given.get("--rtt", "0"))
    except ValueError:
        raise SystemExit(USAGE) from None
    if not 0 <= rtt <= 1000:
        raise SystemExit(USAGE)
    return n, [int(c) for c in conns.split(",")], prefer, int(history), rtt


class PeakMemory:
    """The highest resident memory of this process plus its worker processes together,
    sampled every 50 ms (Linux /proc), with this process's own peak from getrusage; and the
    CPU seconds each worker process had used when last seen."""

    def __init__(self) -> None:
        self.peak = 0
        self.worker_cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            workers = [p.pid for p in multiprocessing.active_children() if p.pid]
            self.peak = max(self.peak, sum(_rss(pid) for pid in [os.getpid(), *workers]))
            for pid in workers:
                self.worker_cpu[pid] = max(self.worker_cpu.get(pid, 0.0), cpu_seconds(pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _own_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _one(root: Path, seed: Path, sink: Sink | Distant, conns: int, n: int, blast: list[Any]) -> Any:
    """Ceiling (half), send_daily, ceiling (half) over `conns` connections to `sink`, on a
    fresh copy of the seeded database."""
    from newsletter import pipeline

    port, sink_pid = sink.port, sink.proc.pid
    run_dir = root / f"run-{sink.port}-{conns}"
    (run_dir / "data").mkdir(parents=True)
    cfg = _config(run_dir, port, conns)
    shutil.copy(seed, cfg.database_path)
    with Database(cfg.database_path) as store:
        blast_cpu = cpu_seconds(os.getpid())
        pipelined: set[bool] = set()
        before = _ceiling(cfg, blast[: n // 2], pipelined)
        blast_cpu = cpu_seconds(os.getpid()) - blast_cpu
        with PeakMemory() as memory:
            own, sink_cpu = cpu_seconds(os.getpid()), cpu_seconds(sink_pid)
            start = time.perf_counter()
            ctx = pipeline.Context(store, cfg, mailer=SMTPMailer(cfg))
            summary = pipeline.send_daily(ctx, DEMO_DAY)
            elapsed = time.perf_counter() - start
            own, sink_cpu = cpu_seconds(os.getpid()) - own, cpu_seconds(sink_pid) - sink_cpu
        after = _ceiling(cfg, blast[n // 2 :], pipelined)
    ceiling = n / (before + after)
    rate = summary.sent / elapsed
    per = 1000 / max(summary.sent, 1)
    print(
        f"{conns} connection(s): ceiling {ceiling:,.0f} msg/s"
        f"{' (pipelined)' if pipelined == {True} else ''} · send_daily {rate:,.0f} msg/s "
        f"({summary.sent:,} sent in {elapsed:.1f} s) · ratio {rate / ceiling:.2f} · "
        f"peak memory {memory.peak / 2**20:,.0f} MB (sending process and workers)\n"
        f"    CPU per message: sending process {own * per:.2f} ms (the ceiling's client: "
        f"{blast_cpu * 1000 / max(n // 2, 1):.2f}) · build processes "
        f"{sum(memory.worker_cpu.values()) * per:.2f} ms · sink {sink_cpu * per:.2f} ms",
        flush=True,
    )
    return ceiling


def run(argv: list[str] | None = None) -> None:
    n, connections, prefer, history, rtt = _options(argv or [])
    sinks: list[Sink | Distant] = []
    try:
        for p in prefer:  # each one started inside the try, so a failure closes the others
            started = Sink(p)
            sinks.append(started)
            if rtt:
                sinks[-1] = Distant(started, rtt)  # closes its sink when it fails to start
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "data").mkdir()
            cfg = _config(root, sinks[0].port, 1)
            with Database(cfg.database, password=cfg.database_password) as store:
                t0 = time.perf_counter()
                _populate(store, cfg, n)
                print(
                    f"set-up: {n:,} subscribers, {store.papers.count():,} papers from "
                    f"{FEED.name} ({time.perf_counter() - t0:.1f} s); sinks: "
                    f"{', '.join(s.name for s in sinks)} (each in another process); "
                    f"build processes: {_processes(cfg)}",
                    flush=True,
                )
                if history:
                    t0 = time.perf_counter()
                    rows = _history(store, history)
                    print(
                        f"history: {history} days of earlier digests for every subscriber in "
                        f"the ledger ({rows:,} rows, {time.perf_counter() - t0:.1f} s)",
                        flush=True,
                    )
                sample = _sample(store, cfg)
                stages = _stages(store, cfg, min(n, 1000))
            size = sum(len(s) for s in sample) / len(sample)
            print(f"digest size: {size / 1024:.1f} KB on average (sample of {len(sample)})")
            print(
                "where one digest's time goes (ms of CPU, one thread, no SMTP): "
                + " · ".join(f"{name} {ms:.2f}" for name, ms in stages.items() if name in SPLIT)
                + f" · total {sum(stages[name] for name in SPLIT):.2f}",
                flush=True,
            )
            print(
                f"card cache: render {stages['render']:.2f} ms a digest, against "
                f"{stages['render, whole template']:.2f} with every card rendered for every "
                f"reader ({stages['render, whole template'] / stages['render']:.1f}x); MIME "
                f"{stages['MIME']:.2f} ms, against {stages['MIME, whole body']:.2f} with no "
                "encoding kept",
                flush=True,
            )
            blast = _prebuilt(sample, n)
            for sink in sinks:
                print(f"sink: {sink.name}", flush=True)
                for conns in connections:
                    _one(root, cfg.database_path, sink, conns, n, blast)
        print(f"peak memory of the sending process alone: {_own_peak() / 2**20:,.0f} MB")
        print(
            "target: send_daily at least 0.6 of the ceiling with 2 connections"
            + (" (smtp-sink's)" if any(prefer) else " (smtp-sink is not installed)")
        )
    finally:
        for sink in sinks:
            sink.close()


def _processes(cfg: Config) -> str:
    wanted = cfg.delivery.build_processes
    if wanted == 0:
        return "none (built in the sending process)"
    count = (os.cpu_count() or 1) if wanted < 0 else wanted
    return f"{count} (runs of at least {cfg.delivery.build_from} digests)"


SPLIT = ("rank", "render", "MIME", "ledger")


def _stages(store: Database, cfg: Config, n: int) -> dict[str, float]:
    """CPU milliseconds per digest for each stage of the send, one after the other (CPU time,
    not wall time: on a shared machine the wall clock also counts other processes' turns).
    Render and MIME are also measured the reference way (`cards_once=False`, and without the
    shared parts), on fresh renderers and caches, over the same digests."""
    from dataclasses import replace

    from newsletter import pipeline
    from newsletter.delivery import qp
    from newsletter.delivery.mime import message_id_for, render_bytes
    from newsletter.render.renderer import Renderer

    day = DEMO_DAY + timedelta(days=1)  # a fresh digest date: the ledger rows are new
    subs = store.subscribers.list()[:n]
    clock = time.process_time
    t0 = clock()
    digests = [
        d for d in pipeline.build_digests(pipeline.Context(store, cfg), DEMO_DAY, subs) if d.picks
    ]
    t1 = clock()
    times: dict[str, float] = {"rank": t1 - t0}
    ids = [message_id_for(cfg, d.subscriber.id, day) for d in digests]
    rendered: list[Any] = []
    for label, cards_once in (("render, whole template", False), ("render", True)):
        rendered.clear()  # ~50 KB a digest: one pass's worth at a time (the peak RSS counts it)
        renderer = Renderer(cfg, cards_once=cards_once)
        renderer.digest(digests[0])  # compiles (and styles) the templates: once per process
        qp._SHARED_QP.clear()
        start = clock()
        rendered = [renderer.digest(d) for d in digests]
        times[label] = clock() - start
    for label, emails in (
        ("MIME, whole body", [replace(r, html_parts=(), text_parts=()) for r in rendered]),
        ("MIME", rendered),
    ):
        start = clock()
        for d, r, mid in zip(digests, emails, ids, strict=True):
            render_bytes(cfg, d.subscriber, r, message_id=mid, digest_date=day, now=DEMO_NOW)
        times[label] = clock() - start
    start = clock()
    for d, mid in zip(digests, ids, strict=True):
        store.sends.claim(d.subscriber.id, day, mid, DEMO_NOW)
        store.sends.mark_sent(d.subscriber.id, day, mid, d.paper_ids, 1, DEMO_NOW)
    times["ledger"] = clock() - start
    k = 1000 / max(len(digests), 1)
    return {name: seconds * k for name, seconds in times.items()}


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

"""Public site benchmark: day pages, paper pages and search over 200,000 stored papers.

The papers are built from the repository's real abstracts (tests/fixtures/eval/corpus.jsonl):
each takes one paper's title and mixes sentences of three abstracts, with generated authors,
categories, days (weekdays over about a year) and Hugging Face counts for one in ten. Pages are
timed in process through the whole app (routing, store, ranker, Jinja2) with Starlette's test
client; a naive `LIKE` scan over title, abstract and authors (`Papers.search`) is timed on the
same queries in the same run as the baseline. Then `newsletter serve` is started on the same
file and its resident memory is read after it has served every kind of page.

    python -m newsletter.bench site          # or: make bench
    NEWSLETTER_BENCH_PAPERS=20000 python -m newsletter.bench site   # a quicker run

The database is kept in data/bench/ and reused while its paper count matches.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import httpx

from newsletter.config import parse_config
from newsletter.models import Paper
from newsletter.store import Database

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fixtures" / "eval" / "corpus.jsonl"
PAPERS = int(os.environ.get("NEWSLETTER_BENCH_PAPERS", "200000"))
PER_DAY = 800
TARGETS = {"day page": (50.0, None), "paper page": (50.0, None), "search": (100.0, 300.0)}
SECRET = "bench-secret-key-0123456789abcdef"
_FIRST = ("Ada", "Alan", "Grace", "Yann", "Fei", "Geoffrey", "Timnit", "Kaiming", "Ilya", "Daphne")
_LAST = ("Lovelace", "Turing", "Hopper", "Zhang", "Li", "Hinton", "Gebru", "Chen", "Sutskever")
_CATS = ("cs.LG", "cs.CL", "cs.CV", "stat.ML", "cs.AI")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _weekdays(n: int, last: date) -> list[date]:
    days: list[date] = []
    d = last
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return days[::-1]


def generate(n: int, seed: int = 12) -> Iterator[Paper]:
    """`n` papers from the real abstracts, oldest day first."""
    rng = random.Random(seed)
    docs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    sentences = [_SENTENCE.split(d["abstract"]) for d in docs]
    days = _weekdays(-(-n // PER_DAY), date(2026, 11, 27))
    for i in range(n):
        a, b, c = (rng.randrange(len(docs)) for _ in range(3))
        abstract = " ".join(sentences[a][:4] + sentences[b][1:3] + sentences[c][-2:])
        day = days[i // PER_DAY]
        hf = rng.random() < 0.1
        yield Paper(
            id=f"{2000 + i // 100_000}.{i % 100_000:05d}",
            title=docs[a]["title"],
            abstract=abstract,
            authors=tuple(
                f"{rng.choice(_FIRST)} {rng.choice(_LAST)}{rng.randrange(300)}"
                for _ in range(rng.randint(1, 8))
            ),
            categories=(rng.choice(_CATS), rng.choice(_CATS)),
            version=1,
            announce_type="new",
            announced=day,
            published=datetime.combine(day, clock_time(rng.randrange(24)), UTC),
            upvotes=rng.randint(0, 300) if hf else None,
            comments=rng.randint(0, 20) if hf else None,
            github_stars=rng.randint(0, 5000) if hf and rng.random() < 0.4 else None,
            hf_date=day if hf else None,
            sources=("arxiv_rss", "huggingface") if hf else ("arxiv_rss",),
        )


def build(path: Path, n: int) -> float:
    """Fill `path` with `n` papers unless it already holds them; seconds spent (0 if reused)."""
    with Database(path) as db:
        if db.papers.count() == n:
            return 0.0
    path.unlink(missing_ok=True)
    start = time.perf_counter()
    with Database(path) as db:
        batch: list[Paper] = []
        now = datetime(2026, 11, 27, 6, tzinfo=UTC)
        for paper in generate(n):
            batch.append(paper)
            if len(batch) == 5_000:
                db.papers.upsert(batch, now)
                batch = []
        if batch:
            db.papers.upsert(batch, now)
    return time.perf_counter() - start


def queries(rng: random.Random) -> list[str]:
    """A mixed set: common and rare words, quoted phrases, authors, several words."""
    docs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    words = sorted({w.lower() for d in docs for w in re.findall(r"[A-Za-z]{5,}", d["title"])})
    common = ["learning", "model", "language", "transformer", "diffusion", "efficient"]
    phrases = [
        '"large language models"',
        '"cost aggregation"',
        '"reinforcement learning"',
        '"object detection"',
        '"kv cache"',
        '"federated learning"',
    ]
    authors = [f"{f} {last}" for f in _FIRST[:4] for last in _LAST[:3]]
    out = common + phrases + authors[:6]
    out += rng.sample(words, 12)  # rare title words
    out += [" ".join(rng.sample(words, 2)) for _ in range(6)]
    out += ["speculative decoding", "graph neural networks", "medical image segmentation"]
    return out


def _like_scan(db: Database, query: str) -> float:
    """Milliseconds for the naive search: one LIKE over title, abstract and authors."""
    start = time.perf_counter()
    db.papers.search(query.strip('"'), limit=25)
    return (time.perf_counter() - start) * 1000


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def _client(path: Path) -> object:
    from newsletter.web.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    cfg = parse_config(
        '[sources]\narxiv_categories = ["cs.LG", "cs.CL", "cs.CV"]\n',
        env={"NEWSLETTER_SECRET_KEY": SECRET},
    )
    return TestClient(create_app(cfg, store_path=path))


def _measure(client: object, paths: list[str]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each request (CPU: this process, every thread)."""
    get = client.get  # type: ignore[attr-defined]
    wall, cpu = [], []
    for p in paths:
        start, start_cpu = time.perf_counter(), time.process_time()
        r = get(p)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{p}: {r.status_code}")
    return wall, cpu


def _report(name: str, measured: tuple[list[float], list[float]]) -> None:
    times, cpu = measured
    median, p95 = statistics.median(times), _p95(times)
    goal_median, goal_p95 = TARGETS[name]
    ok = median <= goal_median and (goal_p95 is None or p95 <= goal_p95)
    goal = f"≤ {goal_median:.0f} ms median" + (f", ≤ {goal_p95:.0f} ms p95" if goal_p95 else "")
    print(
        f"{name:<11}: median {median:6.1f} ms · p95 {p95:6.1f} ms over {len(times)} requests"
        f" (target {goal}: {'met' if ok else 'NOT met'}); CPU per request:"
        f" median {statistics.median(cpu):5.1f} ms · p95 {_p95(cpu):5.1f} ms"
    )


def _serve_memory(path: Path) -> float:
    """Peak resident MB of `newsletter serve` on `path` after every kind of page is served."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = path.parent / "bench-site.toml"
    config.write_text(
        f'[storage]\ndatabase = "{path}"\n[site]\nbase_url = "http://127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    script = Path(sys.executable).parent / "newsletter"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "newsletter"]
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    proc = subprocess.Popen(
        [*cmd, "--config", str(config), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for p in (
            "/",
            "/papers/2026-11-20",
            "/paper/2000.00042",
            "/search?q=learning",
            '/search?q="language+models"',
            "/feeds/daily.atom",
            "/papers/month/2026-10",
        ):
            httpx.get(base + p, timeout=60)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        peak = int(re.search(r"VmHWM:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        return peak / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def run() -> None:
    path = ROOT / "data" / "bench" / f"site-{PAPERS}.db"
    built = build(path, PAPERS)
    size = path.stat().st_size / 2**20
    print(
        f"{PAPERS:,} papers from {CORPUS.name}: "
        + (f"built in {built:.0f} s" if built else "reused")
        + f" · {size:,.0f} MB on disk"
    )
    load = os.getloadavg()[0]
    print(
        f"load average {load:.1f} on {os.cpu_count()} cores: wall times include waiting for a core"
    )
    rng = random.Random(3)
    client = _client(path)
    with Database(path) as db:
        days = db.papers.recent_days(200)
        ids = [f"{2000 + i // 100_000}.{i % 100_000:05d}" for i in rng.sample(range(PAPERS), 60)]
        wanted = queries(rng)
        _measure(client, ["/", f"/paper/{ids[0]}", "/search?q=warm"])  # templates, caches
        day_paths = [f"/papers/{d.isoformat()}" for d in rng.sample(days, min(40, len(days)))]
        _report("day page", _measure(client, day_paths))
        _report("paper page", _measure(client, [f"/paper/{i}" for i in ids]))
        _report("search", _measure(client, [f"/search?{httpx.QueryParams(q=q)}" for q in wanted]))
        baseline = [_like_scan(db, q) for q in wanted]
        print(
            f"baseline   : LIKE scan over title, abstract and authors (Papers.search, 25 rows):"
            f" median {statistics.median(baseline):6.1f} ms · p95 {_p95(baseline):6.1f} ms"
            f" over the same {len(baseline)} queries, unranked"
        )
    print(f"serve      : peak resident memory {_serve_memory(path):,.0f} MB with {PAPERS:,} papers")

"""Ranking throughput and peak memory: 1k, 10k and 100k synthetic subscribers over 2,000 papers.

Each size runs in its own process (so peak RSS belongs to that size alone) and ranks the whole
population with `newsletter.ranking.rank.rank`, reasons included. A per-(subscriber, paper) Python
loop over the same BM25 weights, timed in the same process on a sample, is the baseline.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta

from newsletter.bench import flag_values
from newsletter.models import Paper
from newsletter.ranking.profile import Profile

PAPERS = 2_000
SIZES = (1_000, 10_000, 100_000)
PHRASES = 20_000
TARGET_SECONDS = 30.0  # absolute, for any machine; the 20 % is `--against` a baseline
TARGET_RSS_MB = 1_536.0
DAY = date(2026, 11, 26)
_SYLLABLES = ("ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "ve", "xo", "ba", "de", "fi", "go")


def _words(rng: random.Random, n: int) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(out)


def synthetic_day(seed: int = 7) -> tuple[list[Paper], list[list[str]]]:
    """2,000 papers over 60 topics (topic words + a Zipfian background), and the topics."""
    rng = random.Random(seed)
    vocab = _words(rng, 6_000)
    topics = [rng.sample(vocab[:3_000], 30) for _ in range(60)]
    background = vocab[3_000:]
    weights = [1.0 / (i + 1) for i in range(len(background))]
    papers = []
    for i in range(PAPERS):
        mine = rng.sample(range(len(topics)), rng.choice((1, 1, 2)))
        words = [rng.choice(topics[t]) for t in mine for _ in range(40)]
        words += rng.choices(background, weights, k=110)
        rng.shuffle(words)
        papers.append(
            Paper(
                id=f"2611.{i:05d}",
                title=" ".join(rng.choice(topics[mine[0]]) for _ in range(8)),
                abstract=" ".join(words),
                categories=(rng.choice(("cs.LG", "cs.CL", "cs.CV", "stat.ML")),),
                announced=DAY - timedelta(days=rng.randint(0, 2)),
                upvotes=rng.choice((None, None, None, rng.randint(1, 200))),
                github_stars=rng.choice((None, rng.randint(0, 3_000))),
            )
        )
    return papers, topics


def synthetic_profiles(n: int, papers: Sequence[Paper], topics: list[list[str]]) -> list[Profile]:
    """Mostly 1-3 interest phrases; some categories, likes, votes, negatives, or nothing.

    Phrases come from a pool of 20,000 with Zipfian popularity (people share interests:
    "LLM", "diffusion models"...): 100k subscribers write ~180k phrases, ~14k distinct.
    """
    rng = random.Random(n)
    ids = [p.id for p in papers]
    pool = [" ".join(rng.sample(rng.choice(topics), rng.randint(1, 3))) for _ in range(PHRASES)]
    popularity = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(PHRASES)))
    out = []
    for i in range(n):
        if rng.random() < 0.1:
            out.append(Profile(key=i, size=10))
            continue
        picked = rng.choices(pool, cum_weights=popularity, k=rng.randint(1, 3))
        queries = tuple((q, 1.0) for q in picked)
        voted = rng.random() < 0.03
        out.append(
            Profile(
                key=i,
                queries=queries,
                categories=("cs.CL",) if rng.random() < 0.2 else (),
                liked=tuple(rng.sample(ids, 4 if voted else 1)) if rng.random() < 0.15 else (),
                disliked=tuple(rng.sample(ids, 4)) if voted else (),
                negative=(rng.choice(rng.choice(topics)),) if rng.random() < 0.05 else (),
                exclude=frozenset(rng.sample(ids, 5)),
                since=DAY - timedelta(days=rng.randint(1, 3)),
                size=10,
            )
        )
    return out


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _naive_seconds_per_subscriber(papers: list[Paper], profiles: list[Profile]) -> float:
    """The loop we avoid: score each (subscriber, paper) pair in Python over the same weights."""
    from newsletter.ranking.rank import RANKERS
    from newsletter.ranking.textindex import TextIndex

    titles, abstracts = [p.title for p in papers], [p.abstract for p in papers]
    index = TextIndex(titles, abstracts, RANKERS["bm25"].index)
    rows = [dict(zip(r.indices.tolist(), r.data.tolist(), strict=True)) for r in index.bm25]
    start = time.perf_counter()
    for prof in profiles:
        terms = [index.query_terms(q) for q, _ in prof.queries]
        scores = [
            max((sum(w * row.get(t, 0.0) for t, w in q.items()) for q in terms), default=0.0)
            for row in rows
        ]
        sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:10]
    return (time.perf_counter() - start) / len(profiles)


def child(n: int) -> dict[str, float]:
    """Rank n subscribers (in this process) and report time and peak memory."""
    from newsletter.ranking.rank import RANKERS, rank
    from newsletter.ranking.scoring import prepare_day

    papers, topics = synthetic_day()
    profiles = synthetic_profiles(n, papers, topics)
    start = time.perf_counter()
    prepare_day(papers, DAY, RANKERS["default"])  # indexing, cached for the rank call
    indexed = time.perf_counter()
    rankings = rank(papers, profiles, today=DAY, trending_size=3)
    seconds = time.perf_counter() - start
    picks = sum(len(r.picks) for r in rankings)
    naive = _naive_seconds_per_subscriber(papers, profiles[:20]) if n == SIZES[0] else 0.0
    return {
        "n": n,
        "seconds": seconds,
        "index_seconds": indexed - start,
        "rss_mb": _peak_rss_mb(),
        "picks": picks,
        "naive": naive,
    }


def _options(argv: list[str]) -> tuple[str, int, int]:
    """`[--against DIR] [--rounds N] [--subscribers N]`: the tree to compare with, if any."""
    usage = "usage: rank [--against DIR [--rounds 2] [--subscribers 100000]]"
    given = flag_values(argv, ("--against", "--rounds", "--subscribers"), usage)
    for flag in ("--rounds", "--subscribers"):
        value = given.get(flag, "1")
        if not value.isdigit() or int(value) < 1:
            raise SystemExit(f"{flag} takes a positive whole number, not {value!r}; {usage}")
    against = given.get("--against", "")
    rounds, n = int(given.get("--rounds", 2)), int(given.get("--subscribers", SIZES[-1]))
    if not against and (rounds, n) != (2, SIZES[-1]):
        raise SystemExit(f"--rounds and --subscribers go with --against; {usage}")
    return against, rounds, n


def run(argv: list[str] | None = None) -> None:
    """The three sizes and their targets; with `--against DIR`, this checkout's 100k bench and
    DIR's alternately (`against.py`)."""
    against, rounds, n = _options(argv or [])
    if against:
        from pathlib import Path

        from newsletter.bench.against import compare

        compare(Path(against), rounds, n)
        return
    naive = 0.0
    results = []
    start_load = os.getloadavg()[0]
    if start_load > 0.5:
        print(f"note: load average {start_load:.1f} at start; figures include that contention")
    for n in SIZES:
        out = subprocess.run(
            [sys.executable, "-m", "newsletter.bench.rank", str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        naive = naive or r["naive"]
        results.append(r)
        rss = r["rss_mb"]
        per_sub = (r["seconds"] - r["index_seconds"]) / n
        print(
            f"rank {n:>7,} subscribers x {PAPERS:,} papers: {r['seconds']:6.1f} s "
            f"(indexing {r['index_seconds']:.1f} s + {per_sub * 1000:.2f} ms per subscriber), "
            f"peak RSS {rss:,.0f} MB, {r['picks']:,} picks",
            flush=True,
        )
    if naive:
        last = results[-1]
        per_sub = (last["seconds"] - last["index_seconds"]) / last["n"]
        print(
            f"baseline: a per-pair Python loop takes {naive * 1000:.1f} ms per subscriber "
            f"(plain BM25 only); the vectorised ranker {per_sub * 1000:.2f} ms "
            f"(x{naive / per_sub:,.0f} faster, with feedback, MMR and reasons)"
        )
    big = results[-1]
    ok = big["seconds"] <= TARGET_SECONDS and big["rss_mb"] <= TARGET_RSS_MB
    print(
        f"target {SIZES[-1]:,} x {PAPERS:,} in <= {TARGET_SECONDS:.0f} s and "
        f"<= {TARGET_RSS_MB:,.0f} MB: {'met' if ok else 'MISSED'} "
        f"({big['seconds']:.1f} s, {big['rss_mb']:,.0f} MB; load average {start_load:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]))))

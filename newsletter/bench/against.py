"""`bench rank --against DIR`: this checkout's 100k rank bench and another's, run alternately.

On a shared machine the load changes from one minute to the next, so two figures measured at
different times say little. Here the same bench runs A B A B ... (A = this checkout, B = the
checkout in DIR, e.g. a worktree of an older commit with its own `.venv`), each run in a
fresh process, and the ratio of each pair is what counts, with the CPU time (user + system)
beside the wall time: CPU time moves less with the load than wall time does.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _python(tree: Path) -> str:
    venv = tree / ".venv" / "bin" / "python"
    if not venv.exists():
        raise SystemExit(f"--against {tree}: no {venv} (make a venv there: python3 -m venv .venv)")
    return str(venv)


def _one(python: str, tree: Path, n: int) -> dict[str, Any]:
    """One run of `newsletter.bench.rank N` in `tree`: its JSON line plus its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [python, "-m", "newsletter.bench.rank", str(n)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["process_seconds"] = wall
    return result


def compare(other: Path, rounds: int, n: int) -> None:
    """Alternate this checkout (A) and `other` (B), `rounds` runs each, and print the ratios."""
    here = Path(__file__).resolve().parents[2]
    other = other.resolve()
    trees = {"A": (sys.executable, here), "B": (_python(other), other)}
    print(f"A = {here}\nB = {other}\n{rounds} rounds of {n:,} subscribers, A B A B ...")
    runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
    for r in range(rounds):
        for name, (python, tree) in trees.items():
            got = _one(python, tree, n)
            runs[name].append(got)
            print(
                f"round {r + 1} {name}: rank {got['seconds']:6.1f} s "
                f"(indexing {got['index_seconds']:.1f} s), peak RSS {got['rss_mb']:,.0f} MB, "
                f"process CPU {got['cpu']:.1f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    pairs = [a["seconds"] / b["seconds"] for a, b in zip(runs["A"], runs["B"], strict=True)]
    cpu = [a["cpu"] / b["cpu"] for a, b in zip(runs["A"], runs["B"], strict=True)]
    best = min(x["seconds"] for x in runs["A"]) / min(x["seconds"] for x in runs["B"])
    print(
        f"A / B rank time: median of pairs {statistics.median(pairs):.2f} "
        f"({', '.join(f'{p:.2f}' for p in pairs)}), best against best {best:.2f}; "
        f"whole-process CPU time {statistics.median(cpu):.2f}; "
        f"peak RSS A {max(x['rss_mb'] for x in runs['A']):,.0f} MB, "
        f"B {max(x['rss_mb'] for x in runs['B']):,.0f} MB"
    )

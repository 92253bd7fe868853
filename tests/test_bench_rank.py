"""`python -m newsletter.bench rank --against DIR`: two checkouts' rank benches, alternately."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.bench.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def test_against_runs_both_checkouts_in_turn_and_prints_each_pair_and_the_ratio(
    tmp_path: Path,
) -> None:
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("the checkout has no .venv to compare against (make install)")
    bench = [sys.executable, "-m", "newsletter.bench", "rank", "--against", str(ROOT)]
    out = subprocess.run(
        [*bench, "--rounds", "2", "--subscribers", "300"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    runs = re.findall(r"round (\d) ([AB]): rank +([\d.]+) s .*peak RSS ([\d,]+) MB", out)
    assert [(r, who) for r, who, _, _ in runs] == [("1", "A"), ("1", "B"), ("2", "A"), ("2", "B")]
    assert all(float(s) > 0 and int(mb.replace(",", "")) > 50 for _, _, s, mb in runs)
    ratio = re.search(r"A / B rank time: median of pairs ([\d.]+) \(([\d.]+), ([\d.]+)\)", out)
    assert ratio is not None, out
    assert 0.2 < float(ratio.group(1)) < 5  # the same code on both sides


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rank", "--against", "/nonexistent/tree"], "no /nonexistent/tree/.venv/bin/python"),
        (["rank", "--against", ".", "--rounds", "0"], "--rounds takes a positive whole number"),
        (["rank", "--subscribers", "10"], "--rounds and --subscribers go with --against"),
        (["rank", "--fast"], "usage: rank [--against DIR"),
    ],
)
def test_bad_rank_options_are_refused_with_the_usage(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert message in str(refused.value)

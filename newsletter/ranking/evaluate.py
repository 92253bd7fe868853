"""`newsletter eval`: rank a judged corpus with the digest's own ranker, and score the run.

A run is `profile<TAB>paper_id<TAB>rank` lines (rank from 1). Scores: nDCG@10 (gain
2^grade - 1, log2 discount, ideal from all judged grades), P@10 (grade >= 1) and R@20 (of the
grade-2 papers). Papers without dates, sends or categories leave those parts neutral.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.models import Paper
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import RANKERS, rank, ranker_options
from newsletter.ranking.semantic import Encoder


class EvalError(NewsletterError):
    """A corpus, profile, run or qrels file that cannot be used, and why."""


def _jsonl(path: Path, what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EvalError(f"cannot read {what} file {path}: {exc.strerror}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}:{n}: not a JSON object ({exc.msg})") from None
        if not isinstance(obj, dict) or not obj.get("id"):
            raise EvalError(f'{path}:{n}: each line must be a JSON object with an "id"')
        yield n, obj


def load_corpus(path: Path) -> list[Paper]:
    """CORPUS lines: {"id", "title", "abstract", optional "upvotes", "comments", "categories"}."""
    papers, seen = [], set()
    for n, obj in _jsonl(path, "corpus"):
        pid = str(obj["id"])
        if pid in seen:
            raise EvalError(f"{path}:{n}: paper id {pid!r} appears twice")
        seen.add(pid)
        papers.append(
            Paper(
                id=pid,
                title=str(obj.get("title") or ""),
                abstract=str(obj.get("abstract") or ""),
                categories=tuple(obj.get("categories") or ()),
                upvotes=obj.get("upvotes"),
                comments=obj.get("comments"),
                github_stars=obj.get("github_stars"),
            )
        )
    if not papers:
        raise EvalError(f"{path} holds no papers")
    return papers


def load_profiles(path: Path, k: int) -> list[Profile]:
    """PROFILES lines: {"id", "interests": [TEXT, ...], optional likes, dislikes, categories}."""
    out = []
    for n, obj in _jsonl(path, "profiles"):
        interests = obj.get("interests") or []
        if not isinstance(interests, list) or not all(isinstance(t, str) for t in interests):
            raise EvalError(f'{path}:{n}: "interests" must be a list of strings')
        out.append(
            Profile(
                key=str(obj["id"]),
                queries=tuple((t, 1.0) for t in interests if t.strip()),
                categories=tuple(obj.get("categories") or ()),
                liked=tuple(str(x) for x in obj.get("likes") or ()),
                disliked=tuple(str(x) for x in obj.get("dislikes") or ()),
                negative=tuple(obj.get("negative") or ()),
                size=k,
            )
        )
    return out


def run_lines(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    ranker: str = "default",
    encoder: Encoder | None = None,
) -> Iterator[str]:
    """Rank the corpus for each profile with the digest ranker; yield run lines."""
    if ranker not in RANKERS:
        raise EvalError(f"unknown ranker {ranker!r}: choose from {', '.join(RANKERS)}")
    rankings = rank(corpus, profiles, options=ranker_options(ranker), encoder=encoder)
    for profile, ranking in zip(profiles, rankings, strict=True):
        for r, pick in enumerate(ranking.picks, 1):
            yield f"{profile.key}\t{pick.paper.id}\t{r}"


def load_run(path: Path, text: str | None = None) -> dict[str, list[str]]:
    """Read a run file (or its `text`, e.g. from standard input): ranked ids per profile."""
    run: dict[str, list[tuple[int, str]]] = {}
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EvalError(f"cannot read run file {path}: {exc.strerror}") from None
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3 or not parts[2].strip().isdigit():
            raise EvalError(f"{path}:{n}: expected profile<TAB>paper_id<TAB>rank, got {line!r}")
        run.setdefault(parts[0], []).append((int(parts[2]), parts[1]))
    return {p: [pid for _, pid in sorted(rows)] for p, rows in run.items()}


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalError(f"cannot read qrels file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise EvalError(f"{path} is not JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise EvalError(f"{path} must be {{profile: {{paper_id: grade}}}}")
    return {p: {d: int(g) for d, g in j.items()} for p, j in data.items()}


@dataclass(frozen=True)
class Scores:
    ndcg10: float
    p10: float
    r20: float


def score_one(ranked: Sequence[str], judged: Mapping[str, int]) -> Scores:
    gains = [2 ** judged.get(d, 0) - 1 for d in ranked[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((2**g - 1 for g in judged.values()), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    p10 = sum(1 for d in ranked[:10] if judged.get(d, 0) >= 1) / 10
    top = {d for d, g in judged.items() if g >= 2}
    r20 = len(top & set(ranked[:20])) / len(top) if top else 0.0
    return Scores(dcg / idcg if idcg else 0.0, p10, r20)


def score_run(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, Scores]:
    """Scores per judged profile (a judged profile missing from the run scores 0)."""
    return {p: score_one(run.get(p, []), judged) for p, judged in sorted(qrels.items())}


def mean(scores: Iterable[Scores]) -> Scores:
    s = list(scores)
    if not s:
        return Scores(0.0, 0.0, 0.0)
    return Scores(
        sum(x.ndcg10 for x in s) / len(s),
        sum(x.p10 for x in s) / len(s),
        sum(x.r20 for x in s) / len(s),
    )


def format_table(scores: Mapping[str, Scores]) -> str:
    width = max([len("profile"), *(len(p) for p in scores)])
    lines = [f"{'profile':<{width}}  nDCG@10   P@10   R@20"]
    for p, s in scores.items():
        lines.append(f"{p:<{width}}  {s.ndcg10:7.4f} {s.p10:6.3f} {s.r20:6.3f}")
    m = mean(scores.values())
    lines.append(f"{'MEAN':<{width}}  {m.ndcg10:7.4f} {m.p10:6.3f} {m.r20:6.3f}")
    return "\n".join(lines)


def compare(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    qrels: Mapping[str, Mapping[str, int]],
    rankers: Sequence[str] | None = None,
) -> str:
    """Mean scores of several rankers measured in one process, then the per-profile table of
    the last one (the default ranker when comparing all)."""
    names = list(rankers) if rankers else [n for n in RANKERS if n != "default"] + ["default"]
    unknown = [n for n in names if n not in RANKERS]
    if unknown:
        raise EvalError(f"unknown ranker {unknown[0]!r}: choose from {', '.join(RANKERS)}")
    width = max(len(n) for n in names)
    lines = [f"{'ranker':<{width}}  nDCG@10   P@10   R@20  min nDCG@10"]
    per_profile: dict[str, Scores] = {}
    for name in names:
        run: dict[str, list[str]] = {}
        for line in run_lines(corpus, profiles, name):
            key, pid, _ = line.split("\t")
            run.setdefault(key, []).append(pid)
        per_profile = score_run(run, qrels)
        m = mean(per_profile.values())
        low = min((s.ndcg10 for s in per_profile.values()), default=0.0)
        lines.append(f"{name:<{width}}  {m.ndcg10:7.4f} {m.p10:6.3f} {m.r20:6.3f}  {low:11.4f}")
    lines += ["", f"per profile ({names[-1]}):", format_table(per_profile)]
    return "\n".join(lines)

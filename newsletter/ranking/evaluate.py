"""`newsletter eval`: rank a judged corpus with the digest's own ranker, and score the run.

A run is `profile<TAB>paper_id<TAB>rank` lines (rank from 1). Scores: nDCG@10 (gain
2^grade - 1, log2 discount, ideal from all judged grades), P@10 (grade >= 1) and R@20 (of the
grade-2 papers); unjudged@10 is the share of the top 10 that has no judgment (scored as 0, so
a high share means the pool, not the ranker, may be wrong). Papers without dates, sends or
categories leave those parts neutral.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from newsletter.errors import NewsletterError
from newsletter.models import Paper
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import RANKERS, RankOptions, rank, ranker_options
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


def load_profile_sets(paths: Sequence[Path], k: int) -> list[Profile]:
    """Profiles from several files together (e.g. the dev and the check set); ids must differ."""
    out: list[Profile] = []
    seen: dict[str, Path] = {}
    for path in paths:
        for profile in load_profiles(path, k):
            key = str(profile.key)
            if key in seen:
                where = f"twice in {path}" if seen[key] == path else f"in {seen[key]} and {path}"
                raise EvalError(f"profile {key!r} is {where}")
            seen[key] = path
            out.append(profile)
    return out


def load_qrels_sets(paths: Sequence[Path]) -> dict[str, dict[str, int]]:
    """Judgments from several files together; a profile may be judged in one file only."""
    out: dict[str, dict[str, int]] = {}
    seen: dict[str, Path] = {}
    for path in paths:
        for key, judged in load_qrels(path).items():
            if key in seen:
                raise EvalError(f"profile {key!r} is judged in both {seen[key]} and {path}")
            seen[key] = path
            out[key] = judged
    return out


def judged_profiles(
    profiles: Sequence[Profile], qrels: Mapping[str, Mapping[str, int]]
) -> list[Profile]:
    """The profiles that have judgments (a comparison scores only those)."""
    out = [p for p in profiles if str(p.key) in qrels]
    if not out:
        raise EvalError("no profile has judgments: the profile ids and the qrels keys differ")
    return out


def without_likes(profiles: Sequence[Profile]) -> list[Profile]:
    """The same profiles without their liked papers, which stay out of the ranking (so a run
    with and one without likes choose among the same papers)."""
    return [
        replace(p, liked=(), exclude=p.exclude | frozenset(p.liked)) if p.liked else p
        for p in profiles
    ]


def phrased(profiles: Sequence[Profile], template: str) -> list[Profile]:
    """The same profiles with every interest asked for in a sentence: `template` with "{}"
    where the interest goes ("Can you send me papers on {}?"). The need is the same, so the
    judgments of the bare interest hold."""
    if template.count("{}") != 1 or template.replace("{}", "").count("{") + template.count("}") > 1:
        raise ValueError(f"the phrase must hold one {{}} where the interest goes: {template!r}")
    return [
        replace(p, queries=tuple((template.replace("{}", q), w) for q, w in p.queries))
        for p in profiles
    ]


def ranked_ids(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    options: RankOptions,
    encoder: Encoder | None = None,
) -> dict[str, list[str]]:
    """Paper ids in pick order per profile, ranked by the digest ranker with `options`."""
    rankings = rank(corpus, profiles, options=options, encoder=encoder)
    return {
        str(p.key): [pick.paper.id for pick in r.picks]
        for p, r in zip(profiles, rankings, strict=True)
    }


def run_lines(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    ranker: str = "default",
    encoder: Encoder | None = None,
) -> Iterator[str]:
    """Rank the corpus for each profile with the digest ranker; yield run lines."""
    if ranker not in RANKERS:
        raise EvalError(f"unknown ranker {ranker!r}: choose from {', '.join(RANKERS)}")
    for key, ids in ranked_ids(corpus, profiles, ranker_options(ranker), encoder).items():
        for r, pid in enumerate(ids, 1):
            yield f"{key}\t{pid}\t{r}"


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
    unjudged10: float = 0.0  # share of the top 10 without a judgment (counted as grade 0)


def score_one(ranked: Sequence[str], judged: Mapping[str, int]) -> Scores:
    gains = [2 ** judged.get(d, 0) - 1 for d in ranked[:10]]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((2**g - 1 for g in judged.values()), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    p10 = sum(1 for d in ranked[:10] if judged.get(d, 0) >= 1) / 10
    top = {d for d, g in judged.items() if g >= 2}
    r20 = len(top & set(ranked[:20])) / len(top) if top else 0.0
    unjudged = sum(1 for d in ranked[:10] if d not in judged) / 10
    return Scores(dcg / idcg if idcg else 0.0, p10, r20, unjudged)


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
        sum(x.unjudged10 for x in s) / len(s),
    )


def unjudged_count(s: Scores) -> int:
    """How many of the top 10 were never judged (they score as 0: pool bias, not a miss)."""
    return round(s.unjudged10 * 10)


def format_table(scores: Mapping[str, Scores], *, unjudged: bool = False) -> str:
    """Scores per profile and their mean; with `unjudged`, an unjudged@10 column (a count per
    profile, the mean count on the MEAN line) too."""
    width = max([len("profile"), *(len(p) for p in scores)])
    extra = "  unjudged@10" if unjudged else ""
    lines = [f"{'profile':<{width}}  nDCG@10   P@10   R@20{extra}"]
    for p, s in scores.items():
        cell = f"  {unjudged_count(s):11d}" if unjudged else ""
        lines.append(f"{p:<{width}}  {s.ndcg10:7.4f} {s.p10:6.3f} {s.r20:6.3f}{cell}")
    m = mean(scores.values())
    cell = f"  {m.unjudged10 * 10:11.2f}" if unjudged else ""
    lines.append(f"{'MEAN':<{width}}  {m.ndcg10:7.4f} {m.p10:6.3f} {m.r20:6.3f}{cell}")
    return "\n".join(lines)

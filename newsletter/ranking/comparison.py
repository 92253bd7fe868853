"""`newsletter eval compare`: our rankers and the outside baselines, scored in one run.

Every ranker and baseline ranks the same corpus for the same judged profiles; the report gives
each one's mean and worst profile, the per-profile nDCG@10 of all of them side by side, the
profiles with liked papers ranked with and without their likes, and the detail of the last
ranker (the default one when all are compared).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newsletter.models import Paper
from newsletter.ranking.baselines import BASELINES
from newsletter.ranking.evaluate import (
    EvalError,
    Scores,
    format_table,
    judged_profiles,
    mean,
    ranked_ids,
    score_one,
    unjudged_count,
    without_likes,
)
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import RANKERS, ranker_options
from newsletter.ranking.semantic import Encoder

DEPTH = 20  # papers ranked per profile: R@20 needs 20


@dataclass(frozen=True)
class Column:
    """One ranker's or baseline's scores on the profiles it ranked."""

    name: str
    baseline: bool
    scores: dict[str, Scores]

    @property
    def label(self) -> str:
        return f"{self.name} (baseline)" if self.baseline else self.name

    def worst(self) -> tuple[str, float]:
        key = min(self.scores, key=lambda p: (self.scores[p].ndcg10, p))
        return key, self.scores[key].ndcg10


def check_names(rankers: Sequence[str], baselines: Sequence[str]) -> None:
    """Refuse a ranker or baseline name that does not exist, naming the ones that do."""
    for kind, wanted, known in (("ranker", rankers, RANKERS), ("baseline", baselines, BASELINES)):
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise EvalError(f"unknown {kind} {unknown[0]!r}: choose from {', '.join(known)}")


def score_profiles(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]], keys: Sequence[str]
) -> dict[str, Scores]:
    """Scores of the profiles `keys` (a profile the run left empty scores 0)."""
    return {k: score_one(run.get(k, []), qrels[k]) for k in sorted(keys)}


def _column(
    name: str,
    baseline: bool,
    run: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    keys: Sequence[str],
) -> Column:
    return Column(name, baseline, score_profiles(run, qrels, keys))


def summary_table(columns: Sequence[Column]) -> str:
    width = max([len("ranker"), *(len(c.label) for c in columns)])
    lines = [f"{'ranker':<{width}}  profiles  nDCG@10   P@10   R@20  unj@10  worst nDCG@10"]
    for c in columns:
        m = mean(c.scores.values())
        key, low = c.worst()
        lines.append(
            f"{c.label:<{width}}  {len(c.scores):8d}  {m.ndcg10:7.4f} {m.p10:6.3f} {m.r20:6.3f}"
            f"  {m.unjudged10:6.3f}  {low:6.4f} {key}"
        )
    return "\n".join(lines)


def unjudged_table(columns: Sequence[Column]) -> str:
    """Pool bias: per ranker, the mean and the most papers in a profile's top 10 without a
    judgment (each scores 0 although nobody read it; high counts make its figures a floor)."""
    width = max([len("ranker"), *(len(c.label) for c in columns)])
    lines = [f"{'ranker':<{width}}  unjudged@10   most  profile"]
    for c in columns:
        values = [unjudged_count(s) for s in c.scores.values()]
        key = max(sorted(c.scores), key=lambda k: unjudged_count(c.scores[k]))
        most = unjudged_count(c.scores[key])
        lines.append(
            f"{c.label:<{width}}  {sum(values) / max(len(values), 1):11.2f}"
            f"  {most:5d}  {key if most else '-'}"
        )
    return "\n".join(lines)


def matrix_table(columns: Sequence[Column]) -> str:
    """nDCG@10 per profile (rows) and ranker (columns); '-' where a baseline does not apply."""
    keys = sorted({k for c in columns for k in c.scores})
    width = max([len("profile"), *(len(k) for k in keys)])
    widths = [max(7, len(c.name)) for c in columns]
    head = "  ".join(f"{c.name:>{w}}" for c, w in zip(columns, widths, strict=True))
    lines = [f"{'profile':<{width}}  {head}"]
    for k in keys:
        cells = [
            f"{c.scores[k].ndcg10:{w}.4f}" if k in c.scores else f"{'-':>{w}}"
            for c, w in zip(columns, widths, strict=True)
        ]
        lines.append(f"{k:<{width}}  " + "  ".join(cells))
    means = [
        f"{mean(c.scores.values()).ndcg10:{w}.4f}" for c, w in zip(columns, widths, strict=True)
    ]
    lines.append(f"{'MEAN':<{width}}  " + "  ".join(means))
    return "\n".join(lines)


def likes_table(with_likes: Column, no_likes: Column, svm: Column | None) -> str:
    """The liked profiles scored without and with their likes, the change, and the SVM."""
    keys = sorted(no_likes.scores)
    width = max([len("profile"), *(len(k) for k in keys)])
    head = f"{'profile':<{width}}  no likes    likes    delta"
    lines = [head + (f"  {svm.name}" if svm else "")]
    deltas = []
    for k in keys:
        before, after = no_likes.scores[k].ndcg10, with_likes.scores[k].ndcg10
        deltas.append((after - before, k))
        row = f"{k:<{width}}  {before:8.4f}  {after:7.4f}  {after - before:+7.4f}"
        if svm and k in svm.scores:
            row += f"  {svm.scores[k].ndcg10:{len(svm.name)}.4f}"
        lines.append(row)
    m0 = mean(no_likes.scores.values()).ndcg10
    m1 = mean(with_likes.scores[k] for k in keys).ndcg10
    row = f"{'MEAN':<{width}}  {m0:8.4f}  {m1:7.4f}  {m1 - m0:+7.4f}"
    if svm:
        row += f"  {mean(svm.scores.values()).ndcg10:{len(svm.name)}.4f}"
    lines.append(row)
    lower = [d for d in deltas if d[0] < 0]
    low, low_key = min(deltas)
    lines.append(
        f"likes raise nDCG@10 on {sum(1 for d in deltas if d[0] > 0)} of {len(keys)} profiles"
        f" and lower it on {len(lower)}" + (f" (most: {low:+.4f} {low_key})" if lower else "")
    )
    return "\n".join(lines)


def _ranker_column(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    qrels: Mapping[str, Mapping[str, int]],
    name: str,
    encoder: Encoder | None,
) -> Column:
    run = ranked_ids(corpus, profiles, ranker_options(name), encoder)
    return _column(name, False, run, qrels, [str(p.key) for p in profiles])


def compare(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    qrels: Mapping[str, Mapping[str, int]],
    rankers: Sequence[str] | None = None,
    baselines: Sequence[str] | None = None,
    encoder: Encoder | None = None,
) -> str:
    """The full comparison report (see the module docstring). `baselines=[]` leaves them out;
    `encoder` (a semantic model) is used by our rankers, not by the baselines."""
    names = list(rankers) if rankers else [n for n in RANKERS if n != "default"] + ["default"]
    outside = list(BASELINES) if baselines is None else list(baselines)
    check_names(names, outside)
    judged = judged_profiles(profiles, qrels)
    liked = [p for p in judged if p.liked]
    notes = [
        f"{len(judged)} judged profiles ({len(liked)} with liked papers), {len(corpus)} papers;"
        " nDCG@10 with gain 2^grade - 1, P@10 counts grade >= 1, R@20 the grade-2 papers,"
        " unj@10 the share of the top 10 never judged (scored as 0)"
    ]
    if len(judged) < len(profiles):
        skipped = sorted(str(p.key) for p in profiles if str(p.key) not in qrels)
        notes.append(f"profiles without judgments, not scored: {', '.join(skipped)}")
    columns = [_ranker_column(corpus, judged, qrels, n, encoder) for n in names]
    for b in outside:
        baseline = BASELINES[b]
        if baseline.needs_likes and not liked:
            notes.append(f"{b}: not run, it needs liked papers and no profile has any")
            continue
        run = baseline.rank(corpus, judged, DEPTH)
        if not run:
            notes.append(f"{b}: not run, no profile has interest text")
            continue
        columns.append(_column(b, True, run, qrels, list(run)))
    if any(BASELINES[c.name].needs_likes for c in columns if c.baseline):
        notes.append("baselines that need liked papers rank only the profiles with likes")
    lines = [*notes, "", summary_table(columns), "", "per profile, nDCG@10:", matrix_table(columns)]
    lines += ["", "unjudged papers in the top 10 (scored as 0):", unjudged_table(columns)]
    last = columns[len(names) - 1]
    if liked:
        no_likes = _ranker_column(corpus, without_likes(liked), qrels, last.name, encoder)
        svm = next((c for c in columns if c.baseline and BASELINES[c.name].needs_likes), None)
        lines += [
            "",
            f"with and without liked papers ({last.name}, the {len(liked)} profiles with likes):",
            likes_table(last, no_likes, svm),
        ]
    lines += ["", f"per profile ({last.name}):", format_table(last.scores, unjudged=True)]
    return "\n".join(lines)

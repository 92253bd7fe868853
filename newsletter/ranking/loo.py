"""`newsletter eval loo`: leave-one-profile-out choice of ranker settings.

`SETTINGS` is the one list of named ranker settings that may be tuned. For each judged profile
the setting with the best mean nDCG@10 on all the *other* profiles is chosen, and the held-out
profile is scored with it: the mean of those scores estimates how a setting chosen on these
profiles does on a profile it was not chosen on. A setting that only wins on one profile cannot
be chosen for that profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from newsletter.models import Paper
from newsletter.ranking.comparison import score_profiles
from newsletter.ranking.evaluate import EvalError, Scores, judged_profiles, mean, ranked_ids
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import LIKES_ADD, RANKERS, RankOptions

_BASE = RANKERS["default"]

# Add a setting here to have it considered (the first is the reference and wins ties).
SETTINGS: dict[str, RankOptions] = {
    "default": _BASE,
    "no-prf": replace(_BASE, prf_docs=0),
    "prf-10": replace(_BASE, prf_docs=10),
    "prf-weight-0.5": replace(_BASE, prf_weight=0.5),
    "title-1": replace(_BASE, index=replace(_BASE.index, title_weight=1.0)),
    "title-3": replace(_BASE, index=replace(_BASE.index, title_weight=3.0)),
    "bigrams-0.25": replace(_BASE, index=replace(_BASE.index, bigram_weight=0.25)),
    "bigrams-1": replace(_BASE, index=replace(_BASE.index, bigram_weight=1.0)),
    "k1-1.0": replace(_BASE, index=replace(_BASE.index, k1=1.0)),
    "k1-1.6": replace(_BASE, index=replace(_BASE.index, k1=1.6)),
    "mmr-0.5": replace(_BASE, mmr_lambda=0.5),
    "no-mmr": replace(_BASE, mmr_lambda=1.0),
    "likes-0.25": replace(_BASE, likes=replace(_BASE.likes, weight=0.25)),
    "likes-1": replace(_BASE, likes=replace(_BASE.likes, weight=1.0)),
    "likes-power-2": replace(_BASE, likes=replace(_BASE.likes, power=2.0)),
    "likes-top-0.5%": replace(_BASE, likes=replace(_BASE.likes, reference=0.005)),
    "likes-top-2%": replace(_BASE, likes=replace(_BASE.likes, reference=0.02)),
    "likes-top-10%": replace(_BASE, likes=replace(_BASE.likes, reference=0.1)),
    "likes-max": replace(_BASE, likes=replace(_BASE.likes, pool="max")),
    "no-facets": replace(_BASE, facet_weight=0.0),
    "facets-0.25": replace(_BASE, facet_weight=0.25),
    "facets-0.75": replace(_BASE, facet_weight=0.75),
    "facet-saturation-0.8": replace(_BASE, facet_saturation=0.8),
    "no-acronyms": replace(_BASE, acronyms=False),
    "likes-add": replace(_BASE, likes=LIKES_ADD),
    "likes-ungated": replace(_BASE, likes=replace(LIKES_ADD, gate=0.0)),
}


def choose_held_out(table: Mapping[str, Mapping[str, Scores]]) -> dict[str, str]:
    """For each profile, the setting (of `table`: setting -> profile -> scores) with the best
    mean nDCG@10 over the other profiles; ties go to the setting listed first."""
    names = list(table)
    keys = sorted(next(iter(table.values())))
    totals = {s: sum(table[s][k].ndcg10 for k in keys) for s in names}
    chosen = {}
    for k in keys:
        best = max(names, key=lambda s: (totals[s] - table[s][k].ndcg10, -names.index(s)))
        chosen[k] = best
    return chosen


def _settings_table(table: Mapping[str, Mapping[str, Scores]]) -> str:
    width = max([len("setting"), *(len(s) for s in table)])
    lines = [f"{'setting':<{width}}  nDCG@10   P@10   R@20  worst nDCG@10"]
    for name, scores in table.items():
        m = mean(scores.values())
        key = min(scores, key=lambda p: (scores[p].ndcg10, p))
        lines.append(
            f"{name:<{width}}  {m.ndcg10:7.4f} {m.p10:6.3f} {m.r20:6.3f}"
            f"  {scores[key].ndcg10:6.4f} {key}"
        )
    return "\n".join(lines)


def leave_one_out(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    qrels: Mapping[str, Mapping[str, int]],
    settings: Sequence[str] | None = None,
    depth: int = 20,
) -> str:
    """The leave-one-profile-out report over the named `settings` (default: all)."""
    names = list(settings) if settings else list(SETTINGS)
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise EvalError(f"unknown setting {unknown[0]!r}: choose from {', '.join(SETTINGS)}")
    judged = judged_profiles(profiles, qrels)
    if len(judged) < 2:
        raise EvalError("leave-one-profile-out needs at least two judged profiles")
    keys = [str(p.key) for p in judged]
    sized = [replace(p, size=depth) for p in judged]
    table = {n: score_profiles(ranked_ids(corpus, sized, SETTINGS[n]), qrels, keys) for n in names}
    chosen = choose_held_out(table)
    held = {k: table[chosen[k]][k] for k in sorted(keys)}
    ref = names[0]
    width = max([len("profile"), *(len(k) for k in held)])
    swidth = max([len("chosen setting"), *(len(s) for s in chosen.values())])
    lines = [
        f"leave-one-profile-out over {len(keys)} judged profiles and {len(names)} settings:"
        f" each profile is scored with the setting that has the best mean nDCG@10 on the other"
        f" {len(keys) - 1}",
        "",
        "every setting on all profiles (for reference; choosing from this table is optimistic):",
        _settings_table(table),
        "",
        f"{'profile':<{width}}  {'chosen setting':<{swidth}}  nDCG@10   P@10  {ref} nDCG@10",
    ]
    for k, s in held.items():
        lines.append(
            f"{k:<{width}}  {chosen[k]:<{swidth}}  {s.ndcg10:7.4f} {s.p10:6.3f}"
            f"  {table[ref][k].ndcg10:{len(ref) + 8}.4f}"
        )
    m, r = mean(held.values()), mean(table[ref].values())
    lines.append(
        f"{'LOO MEAN':<{width}}  {'':<{swidth}}  {m.ndcg10:7.4f} {m.p10:6.3f}"
        f"  {r.ndcg10:{len(ref) + 8}.4f}"
    )
    worst = min(held, key=lambda k: (held[k].ndcg10, k))
    counts = {s: sum(1 for c in chosen.values() if c == s) for s in dict.fromkeys(chosen.values())}
    lines += [
        f"worst held-out profile: {worst} {held[worst].ndcg10:.4f}",
        "chosen: "
        + ", ".join(f"{s} for {n} profile{'s' if n > 1 else ''}" for s, n in counts.items()),
    ]
    return "\n".join(lines)

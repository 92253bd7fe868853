"""The fetch entry points: today's papers, a backfill, or papers by ID, landed in the store.

A `Fetcher` holds what every fetch needs (the store, the config, the time, and the network
edges tests replace: the httpx transport, `sleep` and a monotonic clock); its three methods
choose the sources and hand the work to one `FetchRun` (engine.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import httpx

from newsletter.config import Config
from newsletter.errors import FeedError
from newsletter.sources import ARXIV_API, ARXIV_RSS, HUGGINGFACE, arxiv_api
from newsletter.sources.engine import (
    FetchRun,
    FetchSummary,
    Progress,
    api_search,
    check_sources,
    parse_id_list,
)
from newsletter.sources.http import client_for
from newsletter.store import Database

MAX_BACKFILL_DAYS = 90


@dataclass(frozen=True)
class Fetcher:
    """Fetches into `store`; `now` is the run's time (UTC), the rest are the network edges."""

    store: Database
    cfg: Config
    now: datetime
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    on_progress: Progress | None = None

    def today(self, day: date | None = None, sources: Iterable[str] | None = None) -> FetchSummary:
        """Fetch today's papers from every enabled source (or `sources`) into the store.

        arXiv RSS always serves the latest announcement; Hugging Face is asked for `day`, or
        for today and yesterday (UTC) to refresh upvotes. `arxiv_api` runs only when named, for
        the submissions of `day` and the day before. One source failing does not stop the
        others.
        """
        names = check_sources(sources)
        if names is None:
            enabled = (
                (ARXIV_RSS, self.cfg.sources.arxiv_rss),
                (HUGGINGFACE, self.cfg.sources.huggingface),
            )
            names = [n for n, on in enabled if on]
        if not names:
            raise FeedError(
                "no source is enabled: set sources.arxiv_rss or sources.huggingface to true "
                "in the config, or name one with --source"
            )
        today = self.now.date()
        hf_days = [day] if day else [today, today - timedelta(days=1)]

        def work(run: FetchRun) -> None:
            if ARXIV_RSS in names:
                run.fetch_rss(day)
            if ARXIV_API in names:
                last = day or today
                api_search(run, last - timedelta(days=1), last)
            if HUGGINGFACE in names:
                run.fetch_huggingface(hf_days)

        return self.run(work)

    def backfill(self, days: int, sources: Iterable[str] | None = None) -> FetchSummary:
        """Fill the last `days` days: the arXiv API by category and submission date (3 s
        between pages), plus Hugging Face Daily Papers for each of those days when enabled."""
        if not 1 <= days <= MAX_BACKFILL_DAYS:
            raise FeedError(f"--backfill takes 1 to {MAX_BACKFILL_DAYS} days, not {days}")
        names = check_sources(sources) or [ARXIV_API] + (
            [HUGGINGFACE] if self.cfg.sources.huggingface else []
        )
        last = self.now.date()
        first = last - timedelta(days=days)

        def work(run: FetchRun) -> None:
            if ARXIV_API in names or ARXIV_RSS in names:
                api_search(run, first, last)
            if HUGGINGFACE in names:
                run.fetch_huggingface([last - timedelta(days=i) for i in range(days + 1)])

        return self.run(work)

    def ids(self, ids: Iterable[str]) -> FetchSummary:
        """Fetch specific papers by arXiv ID through the API (e.g. papers a subscriber liked)."""
        wanted = parse_id_list(ids)

        def work(run: FetchRun) -> None:
            s = self.cfg.sources
            pages = arxiv_api.fetch_ids(
                run.client,
                s.arxiv_api_url,
                wanted,
                delay=s.arxiv_api_delay_seconds,
                on_page=lambda done, total: run.progress(ARXIV_API, done, total),
            )
            report = run.land_api("ids", pages, keep_cross=True)
            if report is None:
                return
            missing = [i for i in wanted if i not in run.summary.seen_ids]
            if missing:
                report.notes.append(f"arXiv has no paper with ID {', '.join(missing)}")

        return self.run(work)

    def run(self, work: Callable[[FetchRun], None]) -> FetchSummary:
        """One recorded fetch run (a `runs` row of kind "fetch") around `work`."""
        started = self.clock()
        run_id = self.store.runs.start("fetch", self.now)
        client = client_for(
            self.cfg.sources, transport=self.transport, sleep=self.sleep, clock=self.clock
        )
        with client:
            run = FetchRun(self.store, self.cfg, self.now, client, self.on_progress)
            try:
                work(run)
            finally:
                summary = run.summary
                summary.requests = client.requests
                summary.seconds = self.clock() - started
                finished = self.now + timedelta(seconds=summary.seconds)
                self.store.runs.finish(run_id, summary.outcome, summary.line(), finished)
        return summary

"""The machinery behind `sources.fetch.Fetcher`: one run's HTTP client, store writes and report.

Each response is stored as soon as it is parsed, so a later failure loses nothing; a source
that fails is logged with its URL, recorded in `fetch_state`, and the others carry on.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from textwrap import shorten

import httpx

from newsletter.config import Config
from newsletter.errors import FeedError
from newsletter.models import split_arxiv_id
from newsletter.sources import (
    ARXIV_API,
    ARXIV_RSS,
    HUGGINGFACE,
    SOURCE_NAMES,
    Parsed,
    arxiv_api,
    arxiv_rss,
    huggingface,
)
from newsletter.sources.http import Fetched, HttpClient, client_for
from newsletter.store import Database

fetch_log = logging.getLogger("newsletter.fetch")
Progress = Callable[[str, int, int | None], None]  # (source, done, total or None)


@dataclass
class SourceReport:
    """What one source did during a fetch run."""

    name: str
    fetched: int = 0  # papers parsed and kept
    skipped: int = 0  # items not kept (replacements, cross-lists when off)
    added: int = 0
    updated: int = 0
    not_modified: int = 0  # requests answered 304
    days: list[date] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.errors and not self.fetched:
            return f"{self.name}: FAILED ({shorten(self.errors[0], 120, placeholder=' …')})"
        text = f"{self.name}: {self.fetched:,}"
        if len(self.days) == 1:
            text += f" for {self.days[0].isoformat()}"
        elif self.days:
            text += f" over {len(self.days)} days"
        if self.not_modified and not self.fetched:
            text = f"{self.name}: not modified since the last fetch"
        if self.errors:
            text += f" ({len(self.errors)} error(s))"
        return text


@dataclass
class FetchSummary:
    """The outcome of `fetch_all`, `fetch_backfill` or `fetch_ids`."""

    sources: list[SourceReport] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    added_ids: set[str] = field(default_factory=set)
    updated_ids: set[str] = field(default_factory=set)
    seconds: float = 0.0
    requests: int = 0

    @property
    def added(self) -> int:
        return len(self.added_ids)

    @property
    def updated(self) -> int:
        return len(self.updated_ids - self.added_ids)

    @property
    def unchanged(self) -> int:
        return len(self.seen_ids) - self.added - self.updated

    @property
    def errors(self) -> list[str]:
        return [f"{s.name}: {e}" for s in self.sources for e in s.errors]

    @property
    def notes(self) -> list[str]:
        return [n for s in self.sources for n in s.notes]

    @property
    def outcome(self) -> str:
        if not self.errors:
            return "ok"
        failed_all = all(s.errors and not s.fetched for s in self.sources)
        return "failed" if failed_all else "partial"

    def line(self) -> str:
        """'fetched 2,014 papers: 1,980 new · 34 updated · 0 unchanged; arxiv_rss: 2,000 ...'."""
        head = (
            f"fetched {len(self.seen_ids):,} papers: {self.added:,} new · "
            f"{self.updated:,} updated · {self.unchanged:,} unchanged"
        )
        return "; ".join([head, *(s.describe() for s in self.sources)])


class FetchRun:
    """One fetch run: the shared client, the store, the report being filled in."""

    def __init__(
        self,
        store: Database,
        cfg: Config,
        now: datetime,
        client: HttpClient,
        on_progress: Progress | None,
    ) -> None:
        self.store, self.cfg, self.now, self.client = store, cfg, now, client
        self.on_progress = on_progress
        self.summary = FetchSummary()

    @property
    def local_day(self) -> date:
        """The run's day where digests are dated (digest.timezone)."""
        return self.now.astimezone(zoneinfo.ZoneInfo(self.cfg.digest.timezone)).date()

    def report(self, name: str) -> SourceReport:
        for r in self.summary.sources:
            if r.name == name:
                return r
        r = SourceReport(name)
        self.summary.sources.append(r)
        return r

    def progress(self, name: str, done: int, total: int | None) -> None:
        if self.on_progress:
            self.on_progress(name, done, total)

    def land(self, report: SourceReport, parsed: Parsed) -> None:
        """Store one parsed response right away, so a later failure loses nothing."""
        result = self.store.papers.upsert(parsed.papers, self.now)
        report.fetched += len(parsed.papers)
        report.skipped += parsed.skipped
        report.added += result.added
        report.updated += result.updated
        self.summary.seen_ids.update(p.id for p in parsed.papers)
        self.summary.added_ids |= result.added_ids
        self.summary.updated_ids |= result.updated_ids

    def failed(self, report: SourceReport, url: str, exc: Exception) -> None:
        message = str(exc) if isinstance(exc, FeedError) else f"{url}: unusable answer ({exc})"
        fetch_log.error("%s: %s", report.name, message)
        report.errors.append(message)
        self.store.runs.record_fetch_error(url, report.name, message, self.now)

    def succeeded(
        self, report: SourceReport, url: str, count: int, fetched: Fetched | None = None
    ) -> None:
        """Remember a good answer (and its validators for the next conditional GET)."""
        self.store.runs.record_fetch_success(
            url,
            report.name,
            self.now,
            etag=fetched.etag if fetched else None,
            last_modified=fetched.last_modified if fetched else None,
            count=count,
        )

    def unchanged(self, report: SourceReport, url: str) -> None:
        """A 304: the check succeeded; the stored validators and count stay."""
        report.not_modified += 1
        etag, last_modified, count = self.validators(url)
        self.store.runs.record_fetch_success(
            url, report.name, self.now, etag=etag, last_modified=last_modified, count=count or 0
        )

    def validators(self, url: str) -> tuple[str | None, str | None, int | None]:
        state = self.store.runs.fetch_state(url)
        if state is None:
            return None, None, None
        return state.etag, state.last_modified, state.last_count

    # ------------------------------------------------------------ sources

    def fetch_rss(self, day: date | None) -> None:
        s = self.cfg.sources
        report = self.report(ARXIV_RSS)
        url = arxiv_rss.feed_url(s.arxiv_rss_url, s.arxiv_categories)
        etag, modified, _ = self.validators(url)
        self.progress(ARXIV_RSS, 0, 1)
        try:
            fetched = self.client.get(url, etag=etag, last_modified=modified)
            if fetched.not_modified:
                self.unchanged(report, url)
                report.notes.append(f"arXiv feed {url} unchanged since the last fetch")
                return
            if not fetched.ok:
                raise fetched.error("an RSS/Atom feed")
            parsed = arxiv_rss.parse_feed(
                fetched.content, include_cross=s.include_cross_lists, url=url
            )
        except (FeedError, ValueError) as exc:
            self.failed(report, url, exc)
            return
        self.land(report, parsed)
        self.succeeded(report, url, len(parsed.papers), fetched)
        if parsed.day:
            report.days.append(parsed.day)
        if not parsed.papers:
            report.notes.append(arxiv_rss.no_papers_message(parsed.day))
        if day and parsed.day and parsed.day != day:
            report.notes.append(
                f"the arXiv feed is for {parsed.day.isoformat()}, not {day.isoformat()}: "
                "use `newsletter fetch --backfill DAYS` for earlier days"
            )
        for note in report.notes:
            fetch_log.info("%s", note)
        self.progress(ARXIV_RSS, 1, 1)

    def fetch_huggingface(self, days: Sequence[date]) -> None:
        report = self.report(HUGGINGFACE)
        base = self.cfg.sources.huggingface_url
        empty: list[str] = []
        for n, day in enumerate(days):
            url = f"{base}?date={day.isoformat()}"
            count = 0
            try:
                for page_url, parsed, fetched in huggingface.fetch_day(
                    self.client, base, day, validators=self.validators
                ):
                    url = page_url
                    if parsed is None:
                        self.unchanged(report, page_url)
                        continue
                    self.land(report, parsed)
                    # Today's count per paper: the history a late rise is seen in.
                    self.store.upvotes.record(parsed.papers, self.local_day)
                    self.succeeded(report, page_url, len(parsed.papers), fetched)
                    count += len(parsed.papers)
            except (FeedError, ValueError) as exc:
                self.failed(report, url, exc)
            else:
                report.days.append(day)
                if count == 0:
                    empty.append(day.isoformat())
            self.progress(HUGGINGFACE, n + 1, len(days))
        # Today's list is often still empty early on: only a day-set with nothing is news.
        if empty and len(empty) == len(days) and not report.not_modified:
            report.notes.append(f"Hugging Face listed no papers for {' or '.join(empty)}")

    def land_api(
        self, label: str, pages: Iterable[Parsed], keep_cross: bool
    ) -> SourceReport | None:
        """Store arXiv API pages as they arrive and record the outcome under the API's URL
        (one fetch_state row for the API); None when the API failed (recorded, logged)."""
        report = self.report(ARXIV_API)
        url = self.cfg.sources.arxiv_api_url
        try:
            self.land_api_pages(label, pages, keep_cross)
        except (FeedError, ValueError) as exc:
            self.failed(report, url, exc)
            return None
        self.succeeded(report, url, report.fetched)
        return report

    def land_api_pages(self, label: str, pages: Iterable[Parsed], keep_cross: bool) -> None:
        report = self.report(ARXIV_API)
        wanted = set(self.cfg.sources.arxiv_categories)
        for page in pages:
            kept = [p for p in page.papers if keep_cross or p.primary_category in wanted]
            dropped = len(page.papers) - len(kept)
            self.land(report, Parsed(papers=kept, skipped=page.skipped + dropped))
        fetch_log.info("%s: %d papers", label, report.fetched)


def run_fetch(
    store: Database,
    cfg: Config,
    now: datetime,
    work: Callable[[FetchRun], None],
    *,
    transport: httpx.BaseTransport | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    on_progress: Progress | None,
) -> FetchSummary:
    started = clock()
    run_id = store.runs.start("fetch", now)
    with client_for(cfg.sources, transport=transport, sleep=sleep, clock=clock) as client:
        run = FetchRun(store, cfg, now, client, on_progress)
        try:
            work(run)
        finally:
            summary = run.summary
            summary.requests = client.requests
            summary.seconds = clock() - started
            store.runs.finish(
                run_id,
                summary.outcome,
                summary.line(),
                now + timedelta(seconds=summary.seconds),
            )
    return summary


def check_sources(sources: Iterable[str] | None) -> list[str] | None:
    if sources is None:
        return None
    names = list(dict.fromkeys(sources))
    bad = [n for n in names if n not in SOURCE_NAMES]
    if bad:
        raise FeedError(f"unknown source {bad[0]!r}: choose from {', '.join(SOURCE_NAMES)}")
    return names


def api_search(run: FetchRun, first: date, last: date) -> None:
    s = run.cfg.sources
    params = arxiv_api.search_params(s.arxiv_categories, first, last)
    pages = arxiv_api.fetch_search(
        run.client,
        s.arxiv_api_url,
        params,
        delay=s.arxiv_api_delay_seconds,
        on_page=lambda done, total: run.progress(ARXIV_API, done, total),
    )
    report = run.land_api(f"{first}..{last}", pages, s.include_cross_lists)
    if report is not None:
        report.days.extend(first + timedelta(days=i) for i in range((last - first).days + 1))


def parse_id_list(raw: Iterable[str]) -> list[str]:
    """'2401.01234v2, arXiv:2312.00001' -> ['2401.01234', '2312.00001'] or FeedError."""
    ids: list[str] = []
    for part in (p.strip() for chunk in raw for p in chunk.split(",")):
        if not part:
            continue
        try:
            ids.append(split_arxiv_id(part)[0])
        except ValueError:
            raise FeedError(
                f"{part!r} is not an arXiv ID: use the form 2401.01234 or hep-th/9901001"
            ) from None
    if not ids:
        raise FeedError("no arXiv IDs given: pass --ids 2401.01234,2401.05678")
    return list(dict.fromkeys(ids))

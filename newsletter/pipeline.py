"""The whole flow in one readable place: fetch, rank, render, deliver.

CLI, web and scheduler call these functions, never the stages in their own order.
The functions (each added by the stage that owns it):

- `fetch_all(store, cfg, now, *, transport=None, day=None, sources=None) -> FetchSummary`
- `build_digests(store, cfg, digest_date, now, subscribers=None) -> list[Digest]`
- `send_daily(store, cfg, mailer, digest_date, now, ...) -> SendSummary`
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from newsletter import delivery, links
from newsletter.config import Config
from newsletter.delivery.lock import run_lock
from newsletter.errors import DeliveryError, FeedError, NewsletterError
from newsletter.models import Digest, Send, SendStatus, Subscriber, SubscriberStatus
from newsletter.preview import DigestPreview
from newsletter.ranking.profile import profile_from
from newsletter.ranking.rank import rank as rank_papers
from newsletter.ranking.rank import ranker_options
from newsletter.ranking.semantic import load_encoder
from newsletter.sources import ARXIV_API, ARXIV_RSS, HUGGINGFACE, arxiv_api
from newsletter.sources.engine import (
    FetchRun,
    FetchSummary,
    Progress,
    api_search,
    check_sources,
    parse_id_list,
    run_fetch,
)
from newsletter.store import Database
from newsletter.tokens import make_token

# ---------------------------------------------------------------- fetch (issue 2)


def fetch_all(
    store: Database,
    cfg: Config,
    now: datetime,
    *,
    transport: httpx.BaseTransport | None = None,
    day: date | None = None,
    sources: Iterable[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_progress: Progress | None = None,
) -> FetchSummary:
    """Fetch today's papers from every enabled source (or `sources`) into the store.

    arXiv RSS always serves the latest announcement; Hugging Face is asked for `day`, or for
    today and yesterday (UTC) to refresh upvotes. `arxiv_api` runs only when named, for the
    submissions of `day` and the day before. One source failing does not stop the others.
    """
    names = check_sources(sources)
    if names is None:
        names = [
            n
            for n, on in (
                (ARXIV_RSS, cfg.sources.arxiv_rss),
                (HUGGINGFACE, cfg.sources.huggingface),
            )
            if on
        ]
    if not names:
        raise FeedError(
            "no source is enabled: set sources.arxiv_rss or sources.huggingface to true "
            "in the config, or name one with --source"
        )
    today = now.date()
    hf_days = [day] if day else [today, today - timedelta(days=1)]

    def work(run: FetchRun) -> None:
        if ARXIV_RSS in names:
            run.fetch_rss(day)
        if ARXIV_API in names:
            last = day or today
            api_search(run, last - timedelta(days=1), last)
        if HUGGINGFACE in names:
            run.fetch_huggingface(hf_days)

    return run_fetch(
        store,
        cfg,
        now,
        work,
        transport=transport,
        sleep=sleep,
        clock=clock,
        on_progress=on_progress,
    )


def fetch_backfill(
    store: Database,
    cfg: Config,
    now: datetime,
    days: int,
    *,
    transport: httpx.BaseTransport | None = None,
    sources: Iterable[str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_progress: Progress | None = None,
) -> FetchSummary:
    """Fill the last `days` days: the arXiv API by category and submission date (3 s between
    pages), plus Hugging Face Daily Papers for each of those days when enabled."""
    if not 1 <= days <= 90:
        raise FeedError(f"--backfill takes 1 to 90 days, not {days}")
    names = check_sources(sources) or [ARXIV_API] + (
        [HUGGINGFACE] if cfg.sources.huggingface else []
    )
    last = now.date()
    first = last - timedelta(days=days)

    def work(run: FetchRun) -> None:
        if ARXIV_API in names or ARXIV_RSS in names:
            api_search(run, first, last)
        if HUGGINGFACE in names:
            run.fetch_huggingface([last - timedelta(days=i) for i in range(days + 1)])

    return run_fetch(
        store,
        cfg,
        now,
        work,
        transport=transport,
        sleep=sleep,
        clock=clock,
        on_progress=on_progress,
    )


def fetch_ids(
    store: Database,
    cfg: Config,
    now: datetime,
    ids: Iterable[str],
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_progress: Progress | None = None,
) -> FetchSummary:
    """Fetch specific papers by arXiv ID through the API (e.g. papers a subscriber liked)."""
    wanted = parse_id_list(ids)

    def work(run: FetchRun) -> None:
        s = cfg.sources
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

    return run_fetch(
        store,
        cfg,
        now,
        work,
        transport=transport,
        sleep=sleep,
        clock=clock,
        on_progress=on_progress,
    )


# ---------------------------------------------------------------- web: opt-in and notices (issue 6)

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _account_renderer(cfg: Config) -> Any:
    from newsletter.render.renderer import Renderer  # the web app needs it only when it sends

    return Renderer(cfg)


def resubscribe_url(cfg: Config, subscriber_id: int) -> str:
    """The web page that undoes an unsubscribe (it carries the long-lived unsubscribe token)."""
    token = make_token(cfg.require_secret_key(), "unsubscribe", subscriber_id)
    return cfg.site.base_url.rstrip("/") + "/resubscribe/" + token


def _send_account_mail(
    store: Database, cfg: Config, mailer: Any, subscriber: Subscriber, now: datetime, kind: str
) -> str:
    from newsletter.delivery import build_message, new_message_id

    current = store.subscribers.get(subscriber.id) or subscriber
    renderer = _account_renderer(cfg)
    if kind == "confirm":
        rendered = renderer.confirmation(current, links.confirm_url(cfg, current.id))
    else:
        rendered = renderer.unsubscribed(current, resubscribe_url(cfg, current.id))
    message_id = new_message_id(cfg, kind)
    message = build_message(cfg, current, rendered, message_id=message_id, kind=kind, now=now)
    mailer.send(message)
    log.info("sent %s e-mail %s to subscriber %s", kind, message_id, current.id)
    return message_id


def send_confirmation(
    store: Database, cfg: Config, mailer: Any, subscriber: Subscriber, now: datetime
) -> str:
    """E-mail the double opt-in link; returns the Message-ID. Raises DeliveryError."""
    return _send_account_mail(store, cfg, mailer, subscriber, now, "confirm")


def send_unsubscribed_notice(
    store: Database, cfg: Config, mailer: Any, subscriber: Subscriber, now: datetime
) -> str:
    """E-mail "you are unsubscribed" with a way back; returns the Message-ID."""
    return _send_account_mail(store, cfg, mailer, subscriber, now, "notice")


# ---------------------------------------------------------------- send (issue 5)

SEND_CHUNK = 1000  # subscribers ranked per batch while earlier messages are on the wire


@dataclass
class SendSummary:
    """What one send run did, for the CLI's summary line, `runs` and `newsletter status`."""

    digest_date: date
    dry_run: bool = False
    sent: int = 0
    already_sent: int = 0
    nothing_new: int = 0
    paused: int = 0
    failed: int = 0
    retry: int = 0
    failed_earlier: int = 0
    bounced: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    retries: list[tuple[str, str]] = field(default_factory=list)
    empty: list[tuple[str, str]] = field(default_factory=list)
    planned: list[tuple[str, str, int]] = field(default_factory=list)
    aborted: str = ""

    def line(self) -> str:
        """The summary line: sent N · skipped N already sent · N nothing new · ... · failed N."""
        verb = "would send" if self.dry_run else "sent"
        parts = [
            f"{verb} {len(self.planned) if self.dry_run else self.sent:,}",
            f"skipped {self.already_sent:,} already sent",
            f"{self.nothing_new:,} nothing new",
            f"{self.paused:,} paused",
        ]
        if self.retry:
            parts.append(f"{self.retry:,} left to retry")
        if self.failed_earlier:
            parts.append(f"{self.failed_earlier:,} failed earlier")
        text = " · ".join(parts) + f" · failed {self.failed:,}"
        if self.failed or self.retry or self.failed_earlier:
            text += " (see `newsletter status`)"
        if self.aborted:
            text += f"; stopped: {self.aborted}"
        return text

    @property
    def exit_code(self) -> int:
        """1 when a send failed permanently or the run stopped early; 75 when only retries are
        left (EX_TEMPFAIL: the next run will try again); 0 otherwise."""
        if self.failed or self.aborted:
            return 1
        return 75 if self.retry else 0

    @property
    def outcome(self) -> str:
        if self.aborted:
            return "aborted"
        if self.failed:
            return "failed"
        return "retry" if self.retry else "ok"


def default_digest_date(cfg: Config, now: datetime) -> date:
    """Today in the configured digest timezone."""
    return now.astimezone(zoneinfo.ZoneInfo(cfg.digest.timezone)).date()


def _send_targets(
    store: Database,
    cfg: Config,
    digest_date: date,
    now: datetime,
    summary: SendSummary,
    *,
    only: list[str] | None,
    resend: str | None,
    subscribers: list[Subscriber] | None,
    limit: int | None,
) -> list[tuple[Subscriber, Send | None]]:
    """Who gets a digest in this run, each with their ledger row for the date (if any)."""
    if resend:
        sub = store.subscribers.get_by_email(resend.strip())
        if sub is None:
            raise DeliveryError(f"--resend: {resend} is not a subscriber")
        if sub.status != SubscriberStatus.ACTIVE:
            raise DeliveryError(f"--resend: {sub.email} is {sub.status}, not active; not sending")
        mid = delivery.message_id_for(cfg, sub.id, digest_date, variant=int(now.timestamp()))
        store.sends.reopen(sub.id, digest_date, mid, now)
        candidates = [sub]
    else:
        candidates = list(subscribers) if subscribers is not None else store.subscribers.list()
    if only:
        wanted = {e.strip().lower() for e in only}
        candidates = [s for s in candidates if s.email.lower() in wanted]
        missing = wanted - {s.email.lower() for s in candidates}
        if missing:
            raise DeliveryError(f"--to: {', '.join(sorted(missing))} is not a subscriber")
        idle = [s for s in candidates if s.status != SubscriberStatus.ACTIVE]
        if idle:
            raise DeliveryError(f"--to: {idle[0].email} is {idle[0].status}, not active")
    summary.paused = sum(1 for s in candidates if s.status == SubscriberStatus.PAUSED)
    rows = {r.subscriber_id: r for r in store.sends.on(digest_date)}
    todo: list[tuple[Subscriber, Send | None]] = []
    for sub in candidates:
        if sub.status != SubscriberStatus.ACTIVE:
            continue
        row = rows.get(sub.id)
        if row is not None and row.status == SendStatus.SENT:
            summary.already_sent += 1
        elif row is not None and row.status == SendStatus.FAILED:
            summary.failed_earlier += 1
        else:
            todo.append((sub, row))
    return todo[:limit] if limit is not None else todo


def _outgoing(
    store: Database,
    cfg: Config,
    targets: list[tuple[Subscriber, Send | None]],
    digest_date: date,
    now: datetime,
    renderer: Any,
    ledger: delivery.Ledger,
    summary: SendSummary,
    signer: Any,
) -> Iterator[delivery.Outgoing]:
    """Rank, render and build each message lazily, in chunks, while earlier ones are sent."""
    rows = {sub.id: row for sub, row in targets}
    earlier = store.sends.last_sent_dates(digest_date)
    for chunk in delivery.iter_chunks([sub for sub, _ in targets], SEND_CHUNK):
        digests = {d.subscriber.id: d for d in build_digests(store, cfg, digest_date, now, chunk)}
        for sub in chunk:
            digest = digests.get(sub.id)
            if digest is None or not digest.picks:
                reason = (digest.empty_reason if digest else "") or "no new papers matched"
                summary.nothing_new += 1
                summary.empty.append((sub.email, reason))
                if not summary.dry_run:
                    ledger.skipped(sub, digest_date, reason)
                continue
            render = functools.partial(render_digest, renderer, digest, earlier)
            job = _build_job(cfg, digest, rows.get(sub.id), render, ledger, summary, signer)
            if job is not None:
                yield job


def render_digest(renderer: Any, digest: Digest, earlier: dict[int, date]) -> Any:
    """A subscriber's first digest (none sent on an earlier date) is the welcome digest."""
    if digest.subscriber.id in earlier:
        return renderer.digest(digest)
    return renderer.welcome(digest)


def _build_job(
    cfg: Config,
    digest: Digest,
    row: Send | None,
    render: Callable[[], Any],
    ledger: delivery.Ledger,
    summary: SendSummary,
    signer: Any,
) -> delivery.Outgoing | None:
    """One digest rendered and built into the bytes to send; None when it cannot be (recorded
    in the ledger and the summary: a refused address fails, a rendering error is retried)."""
    sub, day = digest.subscriber, digest.date
    message_id = (row.message_id if row else "") or delivery.message_id_for(cfg, sub.id, day)
    job = delivery.Outgoing(
        sub, day, message_id, b"", cfg.email.from_address, (), row.attempts if row else 0
    )
    try:
        rendered = render()
        if summary.dry_run:
            summary.planned.append((sub.email, rendered.subject, len(digest.picks)))
            return None
        job.paper_ids = digest.paper_ids[: len(digest.paper_ids) - rendered.dropped]
        job.raw = delivery.render_bytes(
            cfg,
            sub,
            rendered,
            message_id=message_id,
            digest_date=day,
            now=ledger.clock(),
            signer=signer,
        )
        return job
    except delivery.RefusedMessage as exc:
        reason = f"not sent: {exc}"
        if not summary.dry_run:
            ledger.claim(job)
            if ledger.failed(sub, day, reason, job.prior_attempts):
                summary.bounced.append(sub.email)
        summary.failed += 1
        summary.failures.append((sub.email, reason))
    except NewsletterError:
        raise  # a run-level problem (e.g. the configuration): stop, as for everyone
    except Exception as exc:  # a rendering bug must not stop everyone else's digest
        log.exception("could not render the digest for %s", sub.email)
        reason = f"could not render the digest: {exc}"
        if not summary.dry_run:
            ledger.claim(job)
            ledger.retry(job, reason, job.prior_attempts)
        summary.retry += 1
        summary.retries.append((sub.email, reason))
    return None


def make_mailer(cfg: Config) -> delivery.Mailer:
    """The mailer `delivery.method` asks for (SMTP, or a Maildir outbox)."""
    return delivery.mailer_from_config(cfg)


def send_daily(
    store: Database,
    cfg: Config,
    mailer: delivery.Mailer,
    digest_date: date,
    now: datetime,
    *,
    dry_run: bool = False,
    only: list[str] | None = None,
    limit: int | None = None,
    resend: str | None = None,
    subscribers: list[Subscriber] | None = None,
    renderer: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] | None = None,
    progress: Callable[[delivery.DeliveryReport], None] | None = None,
    stop: threading.Event | None = None,
) -> SendSummary:
    """Send each active subscriber their digest for `digest_date`, exactly once (the ledger).

    Holds the run lock (a second run gets LockedError), records a `runs` row of kind "send",
    and never raises for one subscriber's failure: the summary says what happened.
    `subscribers` restricts the run (the scheduler's per-hour delivery); `dry_run` ranks and
    renders but neither sends nor records anything. `stop` (set by the scheduler on SIGTERM)
    ends the run between messages; the rest stay due for the next run.
    """
    from newsletter.render.renderer import Renderer

    cfg.require_secret_key()  # every digest carries signed links: fail before claiming any
    summary = SendSummary(digest_date, dry_run=dry_run)
    clock = clock or (lambda: datetime.now(UTC))
    renderer = renderer if renderer is not None else Renderer(cfg)
    ledger = delivery.Ledger(store, cfg, clock)
    if dry_run:
        targets = _send_targets(
            store,
            cfg,
            digest_date,
            now,
            summary,
            only=only,
            resend=None,
            subscribers=subscribers,
            limit=limit,
        )
        for _ in _outgoing(store, cfg, targets, digest_date, now, renderer, ledger, summary, None):
            pass
        return summary
    with run_lock(cfg, "send"):
        run_id = store.runs.start("send", now)
        try:
            targets = _send_targets(
                store,
                cfg,
                digest_date,
                now,
                summary,
                only=only,
                resend=resend,
                subscribers=subscribers,
                limit=limit,
            )
            jobs = _outgoing(
                store, cfg, targets, digest_date, now, renderer, ledger, summary, mailer.signer
            )
            report = delivery.deliver(
                store, cfg, mailer, jobs, ledger=ledger, sleep=sleep, progress=progress, stop=stop
            )
        except BaseException as exc:
            store.runs.finish(run_id, "aborted", f"stopped: {exc}", clock())
            raise
        summary.sent += report.sent
        summary.already_sent += report.already_sent
        summary.failed += report.failed
        summary.retry += report.retry
        summary.failures += report.failures
        summary.retries += report.retries
        summary.bounced += report.bounced
        summary.aborted = report.aborted
        store.runs.finish(run_id, summary.outcome, summary.line(), clock())
    return summary


def run_daily(
    store: Database,
    cfg: Config,
    mailer: delivery.Mailer,
    now: datetime,
    *,
    digest_date: date | None = None,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Progress | None = None,
    **send_options: Any,
) -> tuple[FetchSummary, SendSummary]:
    """What cron runs: fetch today's papers, then send today's digests (under one lock)."""
    with run_lock(cfg, "run"):
        fetched = fetch_all(
            store, cfg, now, transport=transport, sleep=sleep, on_progress=on_progress
        )
        sent = send_daily(
            store,
            cfg,
            mailer,
            digest_date or default_digest_date(cfg, now),
            now,
            sleep=sleep,
            **send_options,
        )
    return fetched, sent


# ---------------------------------------------------------------- digests (issue 3)


def build_digests(
    store: Database,
    cfg: Config,
    digest_date: date,
    now: datetime,
    subscribers: list[Subscriber] | None = None,
) -> list[Digest]:
    """Rank the day's papers for each subscriber (default: all active); sends nothing.

    Reads the store once for everyone: the papers of the window, interests, votes, the send
    ledger. A subscriber's candidates are papers dated after their previous digest (at most
    `digest.window_days` days back) that they have not received in an earlier digest; the
    ledger's sends for `digest_date` itself are ignored, so a date already sent is rebuilt
    as it was sent (the preview shows what people received).
    """
    subs = store.subscribers.list(SubscriberStatus.ACTIVE) if subscribers is None else subscribers
    if not subs:
        return []
    ids = [s.id for s in subs]
    window = max(cfg.digest.window_days, 1)
    oldest = digest_date - timedelta(days=window)
    papers = store.papers.between(oldest + timedelta(days=1), digest_date)
    interests = store.subscribers.interests_for_many(ids)
    votes = store.subscribers.feedback_for_many(ids)
    received = store.sends.sent_paper_ids(ids, before=digest_date)
    last = store.sends.last_sent_dates(digest_date)
    profiles = []
    for s in subs:
        prev = last.get(s.id)
        label = f"since your last digest on {prev}" if prev else f"in the last {window} days"
        profiles.append(
            profile_from(
                s.id,
                interests.get(s.id, []),
                votes.get(s.id, []),
                exclude=frozenset(received.get(s.id, ())),
                since=max(prev, oldest) if prev else oldest,
                since_label=label,
                size=s.digest_size,
            )
        )
    known = {pid for p in profiles for pid in (*p.liked, *p.disliked)}
    options = ranker_options(
        "default",
        category_mode=cfg.digest.category_mode,
        trending_weight=cfg.digest.trending_weight,
    )
    rankings = rank_papers(
        papers,
        profiles,
        today=digest_date,
        options=options,
        examples=store.papers.get_many(sorted(known)),
        trending_size=cfg.digest.trending_size,
        encoder=load_encoder(cfg.digest.semantic_model),
    )
    return [
        Digest(
            subscriber=s,
            date=digest_date,
            picks=r.picks,
            trending=r.trending,
            interests=tuple(interests.get(s.id, [])),
            empty_reason=r.empty_reason,
        )
        for s, r in zip(subs, rankings, strict=True)
    ]


# ---------------------------------------------------------------- preview (issue 4)


def preview_digests(
    store: Database,
    cfg: Config,
    digest_date: date,
    now: datetime,
    *,
    emails: Iterable[str] | None = None,
    renderer: Any = None,
) -> list[DigestPreview]:
    """Each subscriber's digest for `digest_date` (every active one, or those in `emails`),
    rendered and built into the exact message `send` would hand to SMTP. Records nothing:
    no send row and no sent papers, so a real send later is unaffected."""
    from newsletter.addresses import normalize_address
    from newsletter.delivery import message_id_for, render_bytes
    from newsletter.delivery.dkim import DKIMSigner
    from newsletter.errors import NewsletterError
    from newsletter.render.renderer import Renderer

    subscribers: list[Subscriber] | None = None
    if emails is not None:
        subscribers = []
        for raw in emails:
            sub = store.subscribers.get_by_email(normalize_address(raw))
            if sub is None:
                raise NewsletterError(
                    f"{raw} is not a subscriber: `newsletter subscribers` lists the addresses"
                )
            subscribers.append(sub)
    renderer = renderer if renderer is not None else Renderer(cfg)
    signer = DKIMSigner.from_config(cfg)
    previews = []
    earlier = store.sends.last_sent_dates(digest_date)
    for digest in build_digests(store, cfg, digest_date, now, subscribers):
        rendered = render_digest(renderer, digest, earlier)
        message_id = message_id_for(cfg, digest.subscriber.id, digest_date)
        eml = render_bytes(
            cfg,
            digest.subscriber,
            rendered,
            message_id=message_id,
            digest_date=digest_date,
            now=now,
            signer=signer,
        )
        previews.append(DigestPreview(digest, rendered, message_id, eml))
    return previews

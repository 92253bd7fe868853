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
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

import httpx

from . import links
from .config import Config
from .errors import FeedError
from .fetch_run import (
    FetchRun,
    FetchSummary,
    Progress,
    api_search,
    check_sources,
    parse_id_list,
    run_fetch,
)
from .interest_model import profile_from
from .models import Digest, Subscriber, SubscriberStatus
from .preview import DigestPreview
from .rank import rank as rank_papers
from .rank import ranker_options
from .semantic import load_encoder
from .sources import ARXIV_API, ARXIV_RSS, HUGGINGFACE, arxiv_api
from .store import Store
from .tokens import make_token

# ---------------------------------------------------------------- fetch (issue 2)


def fetch_all(
    store: Store,
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
    store: Store,
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
    store: Store,
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
        url = s.arxiv_api_url  # one fetch_state row for the API
        pages = arxiv_api.fetch_ids(
            run.client,
            s.arxiv_api_url,
            wanted,
            delay=s.arxiv_api_delay_seconds,
            on_page=lambda done, total: run.progress(ARXIV_API, done, total),
        )
        report = run.report(ARXIV_API)
        try:
            run.land_api_pages("ids", pages, keep_cross=True)
        except (FeedError, ValueError) as exc:
            run.failed(report, url, exc)
            return
        run.succeeded(report, url, report.fetched)
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
    from .render import Renderer  # the web app needs it only when it sends

    return Renderer(cfg)


def resubscribe_url(cfg: Config, subscriber_id: int) -> str:
    """The web page that undoes an unsubscribe (it carries the long-lived unsubscribe token)."""
    token = make_token(cfg.require_secret_key(), "unsubscribe", subscriber_id)
    return cfg.site.base_url.rstrip("/") + "/resubscribe/" + token


def _send_account_mail(
    store: Store, cfg: Config, mailer: Any, subscriber: Subscriber, now: datetime, kind: str
) -> str:
    from .deliver import build_message, new_message_id

    current = store.get_subscriber(subscriber.id) or subscriber
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
    store: Store, cfg: Config, mailer: Any, subscriber: Subscriber, now: datetime
) -> str:
    """E-mail the double opt-in link; returns the Message-ID. Raises DeliveryError."""
    return _send_account_mail(store, cfg, mailer, subscriber, now, "confirm")


def send_unsubscribed_notice(
    store: Store, cfg: Config, mailer: Any, subscriber: Subscriber, now: datetime
) -> str:
    """E-mail "you are unsubscribed" with a way back; returns the Message-ID."""
    return _send_account_mail(store, cfg, mailer, subscriber, now, "notice")


# ---------------------------------------------------------------- digests (issue 3)


def build_digests(
    store: Store,
    cfg: Config,
    digest_date: date,
    now: datetime,
    subscribers: list[Subscriber] | None = None,
) -> list[Digest]:
    """Rank the day's papers for each subscriber (default: all active); sends nothing.

    Reads the store once for everyone: the papers of the window, interests, votes, the send
    ledger. A subscriber's candidates are papers dated after their previous digest (at most
    `digest.window_days` days back) that they have not received yet.
    """
    subs = store.list_subscribers(SubscriberStatus.ACTIVE) if subscribers is None else subscribers
    if not subs:
        return []
    ids = [s.id for s in subs]
    window = max(cfg.digest.window_days, 1)
    oldest = digest_date - timedelta(days=window)
    papers = store.papers_between(oldest + timedelta(days=1), digest_date)
    interests = store.interests_for_many(ids)
    votes = store.feedback_for_many(ids)
    received = store.sent_paper_ids(ids)
    last = store.last_sent_dates(digest_date)
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
        examples=store.get_papers(sorted(known)),
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
    store: Store,
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
    from .addresses import normalize_address
    from .deliver import message_id_for, render_bytes
    from .errors import NewsletterError
    from .mime import DKIMSigner
    from .render import Renderer

    subscribers: list[Subscriber] | None = None
    if emails is not None:
        subscribers = []
        for raw in emails:
            sub = store.get_subscriber_by_email(normalize_address(raw))
            if sub is None:
                raise NewsletterError(
                    f"{raw} is not a subscriber: `newsletter subscribers` lists the addresses"
                )
            subscribers.append(sub)
    renderer = renderer if renderer is not None else Renderer(cfg)
    signer = DKIMSigner.from_config(cfg)
    previews = []
    for digest in build_digests(store, cfg, digest_date, now, subscribers):
        rendered = renderer.digest(digest)
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

"""The daily flow, top to bottom: fetch → rank → render → deliver.

The CLI, the web app and the scheduler call these functions, never the stages in their own
order. Everything a run needs travels in one `Context` (the store, the config, the clock, the
mailer and the network edges tests replace), so no function here takes a long parameter list.

- `digest_date(cfg, now)`: the one rule for which day's digest is due.
- `fetcher(ctx)`: today's papers, a backfill, or papers by ID (sources/fetch.py).
- `build_digests(ctx, day, subscribers)`: rank the window's papers for each subscriber.
- `prepare(ctx, digest, first)`: render and build the exact bytes `send` hands to SMTP;
  preview, the web preview and send all go through it, so they cannot differ.
- `send_daily(ctx, day, options)`: everyone due, exactly once (the ledger), under the run lock;
  `send_batch` is its unit (one batch of due subscribers), `message_builders` its workers.
- `run_daily(ctx)`: what cron runs: fetch, then send.
"""

from __future__ import annotations

import functools
import logging
import time
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import cached_property

import httpx

from newsletter import delivery, send_workers
from newsletter.building import Builders, builders_for
from newsletter.config import Config
from newsletter.delivery.lock import run_lock
from newsletter.delivery.summary import SendSummary
from newsletter.errors import NewsletterError
from newsletter.models import Digest, Paper, Pick, SendStatus, Subscriber, SubscriberStatus
from newsletter.preferences import address_for_lookup, trending_weight
from newsletter.ranking.profile import profile_from
from newsletter.ranking.rank import rank as rank_papers
from newsletter.ranking.rank import ranker_options
from newsletter.ranking.semantic import load_encoder
from newsletter.ranking.traction import Rise, find_rising
from newsletter.render.renderer import RenderedEmail, Renderer
from newsletter.sending import SendOptions, Target, outgoing, send_targets
from newsletter.sources.engine import FetchSummary, Progress
from newsletter.sources.fetch import Fetcher
from newsletter.store import Database
from newsletter.subscriptions import Subscriptions

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    """What every step of a run shares. `mailer` and `renderer` are built on first use."""

    store: Database
    cfg: Config
    clock: Callable[[], datetime] = utcnow
    mailer: delivery.Mailer | None = None
    transport: httpx.BaseTransport | None = None  # the fetch's network (tests: recorded)
    sleep: Callable[[float], None] = time.sleep
    renderer: Renderer | None = None

    def get_mailer(self) -> delivery.Mailer:
        if self.mailer is None:
            self.mailer = delivery.mailer_from_config(self.cfg)
        return self.mailer

    def get_renderer(self) -> Renderer:
        if self.renderer is None:
            self.renderer = Renderer(self.cfg)
        return self.renderer

    @cached_property
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(self.store, self.cfg, self.clock, self.get_mailer)

    @cached_property
    def signer(self) -> delivery.DKIMSigner | None:
        return delivery.DKIMSigner.from_config(self.cfg)


def digest_date(cfg: Config, now: datetime) -> date:
    """The digest date due at `now`: today in the configured digest timezone."""
    return now.astimezone(zoneinfo.ZoneInfo(cfg.digest.timezone)).date()


# ---------------------------------------------------------------- fetch


def fetcher(ctx: Context, on_progress: Progress | None = None) -> Fetcher:
    """The fetch entry points (`today`, `backfill`, `ids`) bound to this run."""
    return Fetcher(
        ctx.store, ctx.cfg, ctx.clock(), ctx.transport, ctx.sleep, on_progress=on_progress
    )


# ---------------------------------------------------------------- rank


@dataclass(frozen=True)
class Candidates:
    """What a digest for one date picks from, read once: the window's papers, and those of
    them that gained traction after their first day. `send_batch` reads it once and ranks
    every chunk of its subscribers against the same papers."""

    day: date
    papers: list[Paper]
    rising: dict[str, Rise]


def candidates(ctx: Context, day: date) -> Candidates:
    papers = window_papers(ctx, day)
    history = ctx.store.upvotes.history([p.id for p in papers], until=day)
    return Candidates(day, papers, find_rising(history, day, ctx.cfg.digest.traction_threshold))


def build_digests(
    ctx: Context,
    day: date,
    subscribers: list[Subscriber] | None = None,
    among: Candidates | None = None,
    last: dict[int, date] | None = None,
) -> list[Digest]:
    """Rank the day's papers for each subscriber (default: all active); sends nothing.

    Reads the store once for everyone: the papers of the window (`among` when given, read by
    `candidates` for the same day), interests, votes, the send ledger. A subscriber's
    candidates are papers dated after their previous digest (at most `digest.window_days`
    days back) that they have not received in an earlier digest, and the window's papers that
    gained traction after their first day (`ranking.traction`); the ledger's sends for `day`
    itself are ignored, so a date already sent is rebuilt as it was sent (the preview shows
    what people received). `last`: each subscriber's latest digest date before `day`
    (`Sends.last_sent_dates(day, ids)`), when the caller has read it already.
    """
    store, cfg = ctx.store, ctx.cfg
    subs = store.subscribers.list(SubscriberStatus.ACTIVE) if subscribers is None else subscribers
    if not subs:
        return []
    ids = [s.id for s in subs]
    window = max(cfg.digest.window_days, 1)
    oldest = day - timedelta(days=window)
    if among is None or among.day != day:
        among = candidates(ctx, day)
    papers = among.papers
    interests = store.subscribers.interests_for_many(ids)
    votes = store.subscribers.feedback_for_many(ids)
    received = store.sends.sent_paper_ids(
        ids, before=day, among={p.id: p.first_seen for p in papers}
    )
    if last is None:  # `last`: the subscribers' `Sends.last_sent_dates(day, ids)`, when read
        last = store.sends.last_sent_dates(day, ids)
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
                trending_weight=trending_weight(s.trending_mix, cfg.digest.trending_weight)
                if s.trending_mix
                else None,
            )
        )
    known = {pid for p in profiles for pid in (*p.liked_examples, *p.disliked_examples)}
    rankings = rank_papers(
        papers,
        profiles,
        today=day,
        options=ranker_options(
            "default",
            category_mode=cfg.digest.category_mode,
            trending_weight=cfg.digest.trending_weight,
        ),
        examples=store.papers.get_many(sorted(known)),
        trending_size=cfg.digest.trending_size,
        encoder=load_encoder(cfg.digest.semantic_model),
        rising=among.rising,
    )
    return [
        Digest(s, day, r.picks, r.trending, tuple(interests.get(s.id, [])), r.empty_reason)
        for s, r in zip(subs, rankings, strict=True)
    ]


def window_papers(ctx: Context, day: date) -> list[Paper]:
    """The papers a digest for `day` picks from: those of its `digest.window_days` days."""
    oldest = day - timedelta(days=max(ctx.cfg.digest.window_days, 1))
    return ctx.store.papers.between(oldest + timedelta(days=1), day)


# ---------------------------------------------------------------- render


def prepare(
    ctx: Context, digest: Digest, *, first: bool, message_id: str = "", now: datetime | None = None
) -> tuple[RenderedEmail, bytes]:
    """The rendered digest (welcome or daily) and the exact bytes `send` hands to SMTP."""
    rendered = ctx.get_renderer().for_digest(digest, first=first)
    sub = digest.subscriber
    raw = delivery.render_bytes(
        ctx.cfg,
        sub,
        rendered,
        message_id=message_id or delivery.message_id_for(ctx.cfg, sub.id, digest.date),
        digest_date=digest.date,
        now=now or ctx.clock(),
        signer=ctx.signer,
    )
    return rendered, raw


@dataclass(frozen=True)
class DigestPreview:
    """One subscriber's digest as it would be sent: rendered parts and the complete message."""

    digest: Digest
    rendered: RenderedEmail
    message_id: str
    eml: bytes  # the exact bytes the send loop would hand to SMTP (DKIM-signed if configured)

    @property
    def subscriber(self) -> Subscriber:
        return self.digest.subscriber

    @property
    def html(self) -> str:
        return self.rendered.html

    @property
    def text(self) -> str:
        return self.rendered.text

    @property
    def subject(self) -> str:
        return self.rendered.subject

    @property
    def picks(self) -> int:
        return len(self.digest.picks)

    @property
    def dropped(self) -> int:
        return self.rendered.dropped


def find_subscribers(ctx: Context, emails: Iterable[str]) -> list[Subscriber]:
    """The subscribers with these addresses, or a NewsletterError naming one that is not."""
    found = []
    for raw in emails:
        sub = ctx.store.subscribers.get_by_email(address_for_lookup(raw))
        if sub is None:
            raise NewsletterError(
                f"{raw} is not a subscriber: `newsletter subscribers` lists the addresses"
            )
        found.append(sub)
    return found


PREVIEW_CHUNK = 1000  # subscribers ranked at a time by `iter_previews`


def iter_previews(
    ctx: Context,
    day: date,
    subscribers: list[Subscriber] | None = None,
    chunk: int = PREVIEW_CHUNK,
    refused: Callable[[Subscriber, str], None] | None = None,
) -> Iterator[DigestPreview]:
    """Each subscriber's digest for `day` (every active one, or `subscribers`), rendered and
    built into the exact message `send` would hand to SMTP, one at a time: ranked `chunk`
    subscribers at a time against one read of the candidates, so `preview --all` holds one
    chunk's digests however many subscribers there are. A message that cannot be built (an
    address it cannot carry: `send` fails it too) is told to `refused` with the reason and
    left out; without `refused` it raises. Records nothing."""
    active = SubscriberStatus.ACTIVE
    subs = ctx.store.subscribers.list(active) if subscribers is None else subscribers
    if not subs:
        return
    among, step = candidates(ctx, day), max(chunk, 1)
    for start in range(0, len(subs), step):
        batch = subs[start : start + step]
        earlier = ctx.store.sends.last_sent_dates(day, [s.id for s in batch])
        for digest in build_digests(ctx, day, batch, among, earlier):
            sub = digest.subscriber
            message_id = delivery.message_id_for(ctx.cfg, sub.id, day)
            first = sub.id not in earlier
            try:
                rendered, eml = prepare(ctx, digest, first=first, message_id=message_id)
            except delivery.RefusedMessage as exc:
                if refused is None:
                    raise
                refused(sub, str(exc))
                continue
            yield DigestPreview(digest, rendered, message_id, eml)


def preview_digests(
    ctx: Context, day: date, subscribers: list[Subscriber] | None = None
) -> list[DigestPreview]:
    """`iter_previews` as a list (one subscriber's preview, the local index)."""
    return list(iter_previews(ctx, day, subscribers))


def preview_day(ctx: Context, day: date) -> date | None:
    """The day a preview shows: `day`, or when no paper arrived in `day`'s window (a quiet
    stretch, or a demo's data from the past) the newest earlier day with papers; None when
    the store has no papers at all."""
    latest = ctx.store.papers.latest_day()
    if latest is None:
        return None
    oldest = day - timedelta(days=max(ctx.cfg.digest.window_days, 1))
    return day if latest > oldest else latest


def sent_digest(ctx: Context, subscriber: Subscriber, day: date) -> DigestPreview | None:
    """The digest `subscriber` was sent for `day`, rebuilt from the ledger's paper ids in the
    order they were sent, or None when no digest went out that day.

    The reasons come from ranking that day again; a paper the ranking no longer picks (the
    reader changed their interests since) is still shown, as a pick without a reason.
    """
    send = ctx.store.sends.get(subscriber.id, day)
    if send is None or send.status != SendStatus.SENT or not send.paper_ids:
        return None
    (rebuilt,) = build_digests(ctx, day, [subscriber])
    known = {p.paper.id: (p, False) for p in rebuilt.picks}
    known.update({p.paper.id: (p, True) for p in rebuilt.trending})
    stored = ctx.store.papers.get_many([pid for pid in send.paper_ids if pid not in known])
    picks: list[Pick] = []
    trending: list[Pick] = []
    for pid in send.paper_ids:
        if pid in known:
            pick, hot = known[pid]
        elif pid in stored:
            pick, hot = Pick(stored[pid], 0.0), False
        else:  # pruned from the store since: nothing left to show for it
            continue
        (trending if hot else picks).append(pick)
    digest = replace(rebuilt, picks=tuple(picks), trending=tuple(trending), empty_reason="")
    first = subscriber.id not in ctx.store.sends.last_sent_dates(day, [subscriber.id])
    message_id = send.message_id or delivery.message_id_for(ctx.cfg, subscriber.id, day)
    rendered, eml = prepare(ctx, digest, first=first, message_id=message_id)
    return DigestPreview(digest, rendered, message_id, eml)


# ---------------------------------------------------------------- deliver


def send_daily(ctx: Context, day: date, options: SendOptions | None = None) -> SendSummary:
    """Send each active subscriber their digest for `day`, exactly once (the ledger).

    Holds the run lock (a second run gets LockedError), records a `runs` row of kind "send",
    and never raises for one subscriber's failure: the summary says what happened.
    """
    opts = options or SendOptions()
    ctx.cfg.require_secret_key()  # every digest carries signed links: fail before claiming any
    summary = SendSummary(day, dry_run=opts.dry_run)
    if opts.dry_run:
        opts.resend = None
        targets = send_targets(ctx, day, summary, opts)
        with message_builders(ctx, day, len(targets), dry_run=True) as builders:
            send_batch(ctx, day, targets, summary, opts, builders)
        return summary
    if send_workers.shares_work(ctx, opts):  # many workers, one queue: no local lock
        return send_workers.send_shared(ctx, day, opts, summary)
    with run_lock(ctx.cfg, "send"):
        run_id = ctx.store.runs.start("send", ctx.clock())
        try:
            targets = send_targets(ctx, day, summary, opts)
            with message_builders(ctx, day, len(targets)) as builders:
                send_batch(ctx, day, targets, summary, opts, builders)
        except BaseException as exc:
            ctx.store.runs.finish(run_id, "aborted", f"stopped: {exc}", ctx.clock())
            raise
        ctx.store.runs.finish(run_id, summary.outcome, summary.line(), ctx.clock())
    return summary


def message_builders(ctx: Context, day: date, digests: int, *, dry_run: bool = False) -> Builders:
    """Where a run's messages for `day` are rendered and built: `delivery.build_processes`
    worker processes for a run of at least `delivery.build_from` digests, else this process.
    Use it as a context manager around one or more `send_batch` calls (workers start once)."""
    papers = functools.partial(window_papers, ctx, day)
    return builders_for(ctx.cfg, ctx.get_renderer(), digests, dry_run, papers)


def send_batch(
    ctx: Context,
    day: date,
    targets: list[Target],
    summary: SendSummary,
    opts: SendOptions,
    builders: Builders,
) -> delivery.DeliveryReport | None:
    """Rank, render, build, claim, send and record `targets` (subscribers due for `day`, each
    with their ledger row), exactly once each, and fold what happened into `summary`.

    The unit of a send: `send_daily` calls it once for everyone due; a caller that claims
    batches of subscribers by other means calls it per batch, sharing one `builders`. Takes
    no lock and writes no `runs` row: the caller does. Returns the delivery's report (None
    for a dry run), whose `aborted` says the server could not be reached.
    """
    ledger = delivery.Ledger(ctx.store, ctx.cfg, ctx.clock, on_bounce=ctx.subscriptions.bounce)
    # one read of the papers for every chunk of the batch
    among = candidates(ctx, day) if targets else None

    def build(
        ctx: Context, day: date, chunk: list[Subscriber], last: dict[int, date]
    ) -> list[Digest]:
        return build_digests(ctx, day, chunk, among, last)

    jobs = outgoing(ctx, targets, day, ledger, summary, build, builders)
    if summary.dry_run:
        for _ in jobs:
            pass
        return None
    report = delivery.deliver(
        ctx.cfg,
        ctx.get_mailer(),
        jobs,
        ledger,
        sleep=ctx.sleep,
        progress=opts.progress,
        stop=opts.stop,
    )
    summary.add(report)
    return report


def run_daily(
    ctx: Context,
    day: date | None = None,
    options: SendOptions | None = None,
    on_progress: Progress | None = None,
) -> tuple[FetchSummary, SendSummary]:
    """What cron runs: fetch today's papers, then send today's digests (under one lock)."""
    with run_lock(ctx.cfg, "run"):
        fetched = fetcher(ctx, on_progress).today()
        sent = send_daily(ctx, day or digest_date(ctx.cfg, ctx.clock()), options)
    return fetched, sent

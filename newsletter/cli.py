"""The `newsletter` command: thin click wrappers that parse, call the stages, and print."""

from __future__ import annotations

import logging
import re
import shutil
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from newsletter import __version__
from newsletter.addresses import normalize_address
from newsletter.config import EXAMPLE_CONFIG, Config, load_config
from newsletter.errors import NewsletterError
from newsletter.models import Interest, InterestKind, SubscriberStatus, split_arxiv_id
from newsletter.store import Database

F = TypeVar("F", bound=Callable[..., Any])


def utcnow() -> datetime:
    return datetime.now(UTC)


class AppContext:
    """What every command needs, loaded once: the config and (on demand) the store."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: Config | None = None
        self._store: Database | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def store(self) -> Database:
        if self._store is None:
            self._store = Database(self.config.database_path)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def friendly_errors(func: F) -> F:
    """Turn NewsletterError into a one-line message and exit status 1 (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NewsletterError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def parse_day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date: use YYYY-MM-DD") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="NEWSLETTER_CONFIG",
    help="Config file (default: $NEWSLETTER_CONFIG, then ./config.toml).",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """Trending research papers, picked per subscriber, in their inbox once a day."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    app = AppContext(config_path)
    ctx.obj = app
    ctx.call_on_close(app.close)


pass_app = click.make_pass_decorator(AppContext)


@cli.command()
@click.option(
    "--path", default=None, help="Where to write the config (default: --config, else config.toml)."
)
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
@click.pass_context
@friendly_errors
def init(ctx: click.Context, path: str | None, force: bool) -> None:
    """Write config.toml from the example and create the database."""
    app: AppContext = ctx.obj
    target = Path(path or app.config_path or "config.toml")
    if target.exists() and not force:
        click.echo(f"{target} exists; keeping it (use --force to overwrite).")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EXAMPLE_CONFIG, target)
        click.echo(
            f"wrote {target}: edit it, then set NEWSLETTER_SECRET_KEY and "
            "NEWSLETTER_SMTP_PASSWORD in the environment"
        )
    app.config_path = str(target)  # the database is the one this config names
    store = app.store
    click.echo(f"database ready: {store.path} (schema version {store.schema_version})")


@cli.command()
@click.argument("email")
@click.option("--name", default="", help="Display name used in the To: header.")
@click.option(
    "--interest",
    "interests",
    multiple=True,
    metavar="TEXT",
    help="A keyword, phrase or description of what to read (repeatable).",
)
@click.option(
    "--category",
    "categories",
    multiple=True,
    metavar="CAT",
    help="An arXiv category such as cs.CL (repeatable).",
)
@click.option(
    "--like",
    "likes",
    multiple=True,
    metavar="ARXIV_ID",
    help="A paper you liked, as an example (repeatable).",
)
@click.option(
    "--not", "negatives", multiple=True, metavar="TEXT", help="A keyword to avoid (repeatable)."
)
@click.option("--timezone", default=None, help="IANA timezone, e.g. Europe/Berlin.")
@click.option(
    "--hour", type=click.IntRange(0, 23), default=None, help="Local hour of delivery (0-23)."
)
@click.option("--size", type=click.IntRange(1, 50), default=None, help="Papers per digest.")
@click.option("--confirmed", is_flag=True, help="Activate now, without the opt-in e-mail.")
@pass_app
@friendly_errors
def subscribe(
    app: AppContext,
    email: str,
    name: str,
    interests: tuple[str, ...],
    categories: tuple[str, ...],
    likes: tuple[str, ...],
    negatives: tuple[str, ...],
    timezone: str | None,
    hour: int | None,
    size: int | None,
    confirmed: bool,
) -> None:
    """Add a subscriber (idempotent: subscribing twice changes nothing and says so)."""
    import zoneinfo

    address = normalize_address(email)
    cfg = app.config
    tz = timezone or cfg.digest.timezone
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{tz!r} is not an IANA timezone such as Europe/Berlin", param_hint="--timezone"
        ) from None
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise click.BadParameter(
            "must be one line, without control characters", param_hint="--name"
        )
    wanted: list[Interest] = []
    for hint, values in (("--interest", interests), ("--not", negatives)):
        if any(not v.strip() for v in values):
            raise click.BadParameter("must not be empty", param_hint=hint)
    for text in interests:
        kind = InterestKind.KEYWORD if len(text.split()) <= 4 else InterestKind.TEXT
        wanted.append(Interest(kind, text.strip()))
    for cat in categories:
        if not re.fullmatch(r"[a-z-]+(\.[A-Za-z-]+)?", cat.strip()):
            raise click.BadParameter(
                f"{cat!r} is not an arXiv category such as cs.CL or stat.ML",
                param_hint="--category",
            )
    wanted += [Interest(InterestKind.CATEGORY, c.strip()) for c in categories]
    for raw in likes:
        try:
            wanted.append(Interest(InterestKind.LIKE, split_arxiv_id(raw)[0]))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--like") from None
    wanted += [Interest(InterestKind.NOT_KEYWORD, n.strip()) for n in negatives]
    now = utcnow()
    status = SubscriberStatus.ACTIVE if confirmed else SubscriberStatus.PENDING
    sub, created = app.store.subscribers.add(
        address,
        now,
        name=name,
        status=status,
        timezone=tz,
        delivery_hour=cfg.digest.hour if hour is None else hour,
        digest_size=cfg.digest.size if size is None else size,
    )
    known = {(i.kind, i.value) for i in app.store.subscribers.interests_for(sub.id)}
    fresh = [i for i in wanted if (i.kind, i.value) not in known]
    if fresh:
        app.store.subscribers.add_interests(sub.id, fresh, now)
    if not created:
        if confirmed and sub.status != SubscriberStatus.ACTIVE:
            app.store.subscribers.set_status(sub.id, SubscriberStatus.ACTIVE, now)
            click.echo(f"{address} was already subscribed ({sub.status}); now active.")
        elif sub.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
            click.echo(
                f"{address} is {sub.status}; nothing changed (add --confirmed to subscribe "
                "them again, only if they asked you to)."
            )
        else:
            click.echo(
                f"{address} is already subscribed ({sub.status}); nothing changed"
                + (f" except {len(fresh)} new interest(s) added." if fresh else ".")
            )
        return
    click.echo(
        f"subscribed {address} ({status}) with {len(wanted)} interest(s)"
        + ("" if confirmed else "; pending until the address is confirmed")
    )


@cli.command()
@click.argument("email")
@pass_app
@friendly_errors
def unsubscribe(app: AppContext, email: str) -> None:
    """Unsubscribe an address (kept as 'unsubscribed' so it is never mailed again)."""
    address = normalize_address(email)
    sub = app.store.subscribers.get_by_email(address)
    if sub is None:
        raise click.ClickException(f"{address} is not a subscriber")
    if sub.status == SubscriberStatus.UNSUBSCRIBED:
        click.echo(f"{address} was already unsubscribed.")
        return
    app.store.subscribers.set_status(sub.id, SubscriberStatus.UNSUBSCRIBED, utcnow())
    click.echo(f"unsubscribed {address}.")


@cli.command()
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]), default=None)
@pass_app
@friendly_errors
def subscribers(app: AppContext, status: str | None) -> None:
    """List subscribers as a table."""
    subs = app.store.subscribers.list(SubscriberStatus(status) if status else None)
    interests = app.store.subscribers.interests_for_many([s.id for s in subs])
    click.echo(
        f"{'id':>5}  {'email':<32} {'status':<12} {'tz':<18} {'hour':>4} {'size':>4}  interests"
    )
    for s in subs:
        what = ", ".join(i.value for i in interests.get(s.id, []))
        click.echo(
            f"{s.id:>5}  {s.email:<32} {s.status:<12} {s.timezone:<18} "
            f"{s.delivery_hour:>4} {s.digest_size:>4}  {what[:60]}"
        )
    click.echo(f"{len(subs)} subscriber(s)")


@cli.command()
@click.option("--date", "day", default=None, help="Announcement date (YYYY-MM-DD).")
@click.option("--search", default="", help="Text to look for in title, abstract or authors.")
@click.option("--limit", default=50, show_default=True)
@pass_app
@friendly_errors
def papers(app: AppContext, day: str | None, search: str, limit: int) -> None:
    """List stored papers."""
    found = app.store.papers.search(search, parse_day(day), limit)
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
            f"{p.id:<12} {p.announced or p.hf_date or ''!s:<10} {p.primary_category:<8} "
            f"{p.title[:70]}  {stats}".rstrip()
        )
    click.echo(f"{len(found)} paper(s)")


# ---------------------------------------------------------------- fetch (issue 2)


class _FetchProgress:
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
    type=click.Choice(["arxiv_rss", "arxiv_api", "huggingface"]),
    help="Only this source (repeatable). Default: every source enabled in [sources].",
)
@click.option(
    "--backfill",
    type=click.IntRange(1, 90),
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
    from newsletter import pipeline

    if backfill is not None and ids is not None:
        raise click.UsageError("use either --backfill or --ids, not both")
    progress = _FetchProgress()
    common: dict[str, Any] = {"on_progress": progress}
    try:
        if ids is not None:
            summary = pipeline.fetch_ids(app.store, app.config, utcnow(), [ids], **common)
        elif backfill is not None:
            summary = pipeline.fetch_backfill(
                app.store, app.config, utcnow(), backfill, sources=sources or None, **common
            )
        else:
            summary = pipeline.fetch_all(
                app.store,
                app.config,
                utcnow(),
                day=parse_day(day),
                sources=sources or None,
                **common,
            )
    finally:
        progress.clear()
    for note in summary.notes:
        click.echo(note)
    # Failures were logged (with their URL) as they happened; the summary line repeats them.
    click.echo(f"{summary.line()} ({summary.seconds:.1f} s)")
    if summary.outcome == "failed":
        sys.exit(1)


# ---------------------------------------------------------------- status and schedule (issue 7)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (for monitoring).")
@click.option(
    "--check",
    is_flag=True,
    help="Exit with status 2 when the report lists problems (for monitoring scripts).",
)
@pass_app
@friendly_errors
def status(app: AppContext, as_json: bool, check: bool) -> None:
    """Show subscribers, today's papers, last runs, retries, failures and bounces."""
    import json

    from newsletter.status import format_status, gather_status

    report = gather_status(app.store, app.config, utcnow())
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_status(report))
    if check and report.problems:
        sys.exit(2)


@cli.command()
@click.option(
    "--once",
    is_flag=True,
    help="Do one pass and exit: fetch if a scheduled fetch was missed, then send to everyone "
    "due (e.g. from cron every 15 minutes instead of running the daemon).",
)
@click.option(
    "--no-fetch",
    is_flag=True,
    help="Never fetch (when another process or cron job fetches the papers).",
)
@click.option(
    "--send-every",
    type=click.FloatRange(min=0.5),
    default=None,
    metavar="SECONDS",
    help="Run the send pass every SECONDS instead of every quarter hour (tests and operations; "
    "each subscriber is still sent at most once per local date).",
)
@click.option(
    "--fetch-every",
    type=click.FloatRange(min=0.5),
    default=None,
    metavar="SECONDS",
    help="Fetch every SECONDS instead of at schedule.fetch_times (tests and operations).",
)
@click.pass_context
@friendly_errors
def schedule(
    ctx: click.Context,
    once: bool,
    no_fetch: bool,
    send_every: float | None,
    fetch_every: float | None,
) -> None:
    """Run the scheduler daemon: fetch at schedule.fetch_times, send at each subscriber's hour.

    Fetches at schedule.fetch_times in schedule.fetch_timezone (arXiv rebuilds its feeds at
    midnight US Eastern; a later fetch refreshes Hugging Face upvotes before sending). Every
    quarter hour (and once at start-up) it sends to the active subscribers whose delivery hour
    has come in their own timezone, each at most once per local date, under the same lock as
    `newsletter send`. Missed runs are coalesced and run if at most
    schedule.misfire_grace_seconds late. SIGTERM or Ctrl-C lets the message being sent finish,
    then exits with status 0.
    """
    from newsletter.schedule import Daemon, ScheduleOptions, configure_logging

    app: AppContext = ctx.obj
    configure_logging(ctx.parent.params.get("verbose", 0) if ctx.parent else 0)
    options = ScheduleOptions(
        fetch=not no_fetch, once=once, send_every=send_every, fetch_every=fetch_every
    )
    daemon = Daemon(app.config, options)
    sys.exit(daemon.run())


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default: web.host).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: web.port)."
)
@click.option(
    "--forwarded-allow-ips",
    default=None,
    metavar="IPS",
    help="Proxies trusted for X-Forwarded-For/-Proto (default: 127.0.0.1; '*' trusts all).",
)
@pass_app
@friendly_errors
def serve(
    app: AppContext, host: str | None, port: int | None, forwarded_allow_ips: str | None
) -> None:
    """Run the web app: subscribe, confirm, unsubscribe, manage, feedback, preview."""
    import uvicorn

    from newsletter.web.app import create_app

    cfg = app.config
    web_app = create_app(cfg)
    host, port = host or cfg.web.host, port or cfg.web.port
    click.echo(f"serving {cfg.site.name} on http://{host}:{port} (public URL {cfg.site.base_url})")
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        server_header=False,
        log_level="info",
    )


# ---------------------------------------------------------------- eval (issue 3)


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


# ---------------------------------------------------------------- preview (issue 4)


def serve_preview_index(
    store: Database, cfg: Config, digest_date: date, port: int, emails: list[str] | None = None
) -> None:
    """Serve an index of the digests for `digest_date`, rendered afresh on each reload."""
    from newsletter import pipeline
    from newsletter.preview import preview_server
    from newsletter.render.renderer import Renderer

    renderer = Renderer(cfg)

    def build() -> list[pipeline.DigestPreview]:
        return pipeline.preview_digests(
            store, cfg, digest_date, utcnow(), emails=emails, renderer=renderer
        )

    try:
        server = preview_server(digest_date.isoformat(), build, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): pick another --port"
        ) from None
    click.echo(f"previews of {digest_date} on http://127.0.0.1:{port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.command()
@click.argument("email", required=False)
@click.option("--all", "everyone", is_flag=True, help="Every active subscriber.")
@click.option("--date", "day", default=None, help="Digest date, YYYY-MM-DD (default: today).")
@click.option(
    "--out",
    "out_dir",
    default=None,
    metavar="DIR",
    help="Folder for the files (default: <storage.data_dir>/previews).",
)
@click.option("--serve", "serve_index", is_flag=True, help="Serve an index on localhost instead.")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8025, show_default=True, help="For --serve."
)
@pass_app
@friendly_errors
def preview(
    app: AppContext,
    email: str | None,
    everyone: bool,
    day: str | None,
    out_dir: str | None,
    serve_index: bool,
    port: int,
) -> None:
    """Render digests exactly as they would be sent, without sending or recording anything.

    Writes <address>.html, .txt and the complete .eml for EMAIL or --all, or with --serve
    shows an index of them at http://127.0.0.1:PORT/ (rendered afresh on each reload).
    """
    import zoneinfo

    from newsletter import pipeline
    from newsletter.preview import file_stem, write_previews
    from newsletter.render.renderer import Renderer

    if email and everyone:
        raise click.UsageError("give an EMAIL or --all, not both")
    if not (email or everyone or serve_index):
        raise click.UsageError("give an EMAIL, --all, or --serve")
    cfg = app.config
    today = utcnow().astimezone(zoneinfo.ZoneInfo(cfg.digest.timezone)).date()
    digest_date = parse_day(day) or today
    emails = [email] if email else None
    renderer = Renderer(cfg)

    def build() -> list[pipeline.DigestPreview]:
        return pipeline.preview_digests(
            app.store, cfg, digest_date, utcnow(), emails=emails, renderer=renderer
        )

    if serve_index:
        serve_preview_index(app.store, cfg, digest_date, port, emails=emails)
        return
    previews = build()
    target = Path(out_dir) if out_dir else cfg.path(cfg.storage.data_dir) / "previews"
    write_previews(previews, target)
    for p in previews:
        notes = [f"{p.picks} pick(s)", f"{len(p.html.encode()) / 1024:.1f} KB HTML"]
        if p.dropped:
            notes.append(f"{p.dropped} item(s) dropped to stay under the size limit")
        if not p.picks:
            notes.append("nothing new: `send` would skip it")
        click.echo(f"{target / file_stem(p.subscriber)}.html/.txt/.eml  {', '.join(notes)}")
    click.echo(f"{len(previews)} preview(s) in {target} (nothing was sent or recorded)")


# ---------------------------------------------------------------- send, run and demo (issue 5)


class _SendProgress:
    """'sending: 1,204 sent · 0 failed' on a terminal (stderr); silent otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False

    def __call__(self, report: Any) -> None:
        if not self.enabled:
            return
        click.echo(
            f"\r\033[Ksending: {report.sent:,} sent · {report.failed:,} failed · "
            f"{report.retry:,} to retry",
            nl=False,
            err=True,
        )
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\033[K", nl=False, err=True)


def _echo_some(lines: list[str], err: bool = False, most: int = 20) -> None:
    for line in lines[:most]:
        click.echo(line, err=err)
    if len(lines) > most:
        click.echo(f"... and {len(lines) - most:,} more", err=err)


def _print_send(summary: Any) -> None:
    _echo_some([f"would send {e}: {s} ({n} papers)" for e, s, n in summary.planned])
    _echo_some([f"nothing new for {e}: {why}" for e, why in summary.empty])
    _echo_some([f"failed: {e}: {why}" for e, why in summary.failures], err=True)
    _echo_some([f"will retry: {e}: {why}" for e, why in summary.retries], err=True)
    for address in summary.bounced:
        click.echo(f"bounced: {address} gets no more digests (repeated permanent failures)")
    click.echo(summary.line())


@cli.command()
@click.option(
    "--date", "day", default=None, help="Digest date (default: today in digest.timezone)."
)
@click.option(
    "--dry-run", is_flag=True, help="Rank and render, print who would get what; send nothing."
)
@click.option(
    "--to", "only", multiple=True, metavar="EMAIL", help="Only this subscriber (repeatable)."
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N digests.")
@click.option(
    "--resend",
    metavar="EMAIL",
    default=None,
    help="Send this subscriber's digest again, even if it was sent (a new Message-ID).",
)
@pass_app
@friendly_errors
def send(
    app: AppContext,
    day: str | None,
    dry_run: bool,
    only: tuple[str, ...],
    limit: int | None,
    resend: str | None,
) -> None:
    """Send the day's digests: each subscriber at most once per date, so reruns are safe.

    Exit status: 0 all done, 1 a send failed permanently or the run could not start,
    75 some digests are left to retry (the next run sends them).
    """
    from newsletter import pipeline

    cfg, now = app.config, utcnow()
    digest_date = parse_day(day) or pipeline.default_digest_date(cfg, now)
    progress = _SendProgress()
    try:
        summary = pipeline.send_daily(
            app.store,
            cfg,
            pipeline.make_mailer(cfg),
            digest_date,
            now,
            dry_run=dry_run,
            only=list(only) or None,
            limit=limit,
            resend=resend,
            progress=progress,
        )
    finally:
        progress.clear()
    _print_send(summary)
    if summary.exit_code:
        sys.exit(summary.exit_code)


@cli.command()
@click.option(
    "--date", "day", default=None, help="Digest date (default: today in digest.timezone)."
)
@pass_app
@friendly_errors
def run(app: AppContext, day: str | None) -> None:
    """Fetch today's papers, then send today's digests (what cron runs: `make send`)."""
    from newsletter import pipeline

    cfg, now = app.config, utcnow()
    fetch_progress, send_progress = _FetchProgress(), _SendProgress()
    try:
        fetched, summary = pipeline.run_daily(
            app.store,
            cfg,
            pipeline.make_mailer(cfg),
            now,
            digest_date=parse_day(day),
            on_progress=fetch_progress,
            progress=send_progress,
        )
    finally:
        fetch_progress.clear()
        send_progress.clear()
    for note in fetched.notes:
        click.echo(note)
    for error in fetched.errors:
        click.echo(f"error: {error}", err=True)
    click.echo(fetched.line())
    _print_send(summary)
    if summary.exit_code:
        sys.exit(summary.exit_code)


@cli.command()
@click.option("--dir", "directory", default="demo", show_default=True, help="Where the demo lives.")
@click.option(
    "--preview",
    is_flag=True,
    help="Then serve the demo digests like `newsletter preview --serve` does.",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8025, show_default=True)
@friendly_errors
def demo(directory: str, preview: bool, port: int) -> None:
    """The whole product offline: sample day, demo subscribers, a local SMTP server, previews."""
    from newsletter.demo import DEMO_DAY, demo_config, run_demo

    result = run_demo(Path(directory), echo=click.echo)
    if preview:
        cfg = demo_config(Path(directory))
        with Database(cfg.database_path) as store:
            serve_preview_index(store, cfg, DEMO_DAY, port)
    if result.exit_code:
        sys.exit(result.exit_code)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(standalone_mode=True)
    except NewsletterError as exc:  # pragma: no cover - friendly_errors covers commands
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)

"""Commands that build and send digests: preview, send, run (what cron runs), demo."""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

import click

from newsletter import pipeline, send_workers
from newsletter.cli.base import AppContext, cli, echo_some, friendly_errors, parse_day, pass_app
from newsletter.cli.papers import FetchProgress
from newsletter.delivery import DeliveryReport
from newsletter.delivery.summary import SendSummary
from newsletter.models import Subscriber
from newsletter.pipeline import DigestPreview
from newsletter.preview import preview_server, write_previews
from newsletter.store import Database


def serve_preview_index(
    ctx: pipeline.Context, day: date, port: int, emails: list[str] | None = None
) -> None:
    """Serve an index of the digests for `day`, rendered afresh on each reload."""

    def build() -> list[DigestPreview]:
        chosen = pipeline.find_subscribers(ctx, emails) if emails else None
        return pipeline.preview_digests(ctx, day, chosen)

    try:
        server = preview_server(day.isoformat(), build, port)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}): pick another --port"
        ) from None
    click.echo(f"previews of {day} on {server.url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _describe_preview(p: DigestPreview) -> str:
    notes = [f"{p.picks} pick(s)", f"{len(p.html.encode()) / 1024:.1f} KB HTML"]
    if p.dropped:
        notes.append(f"{p.dropped} item(s) dropped to stay under the size limit")
    if not p.picks:
        notes.append("nothing new: `send` would skip it")
    return ", ".join(notes)


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

    Writes NAME.html, .txt and the complete .eml for EMAIL or --all (NAME is the address made a
    file name: kv@example.org -> kv-example-org), or with --serve shows an index of them at
    http://127.0.0.1:PORT/ (rendered afresh on each reload).
    """
    if email and everyone:
        raise click.UsageError("give an EMAIL or --all, not both")
    if not (email or everyone or serve_index):
        raise click.UsageError("give an EMAIL, --all, or --serve")
    ctx, cfg = app.context(), app.config
    digest_date = parse_day(day) or pipeline.digest_date(cfg, ctx.clock())
    emails = [email] if email else None
    if serve_index:
        serve_preview_index(ctx, digest_date, port, emails=emails)
        return
    chosen = pipeline.find_subscribers(ctx, emails) if emails else None
    target = Path(out_dir) if out_dir else cfg.path(cfg.storage.data_dir) / "previews"
    count, left_out = 0, 0

    def refused(sub: Subscriber, reason: str) -> None:
        nonlocal left_out
        left_out += 1
        click.echo(f"not previewed: {sub.email}: {reason} (`send` would fail it too)", err=True)

    previews = pipeline.iter_previews(ctx, digest_date, chosen, refused=refused)
    for p, path in write_previews(previews, target):
        click.echo(f"{path.with_suffix('')}.html/.txt/.eml  {_describe_preview(p)}")
        count += 1
    click.echo(f"{count} preview(s) in {target} (nothing was sent or recorded)")
    if left_out:
        sys.exit(1)


class SendProgress:
    """'sending: 1,204 sent · 0 failed' on a terminal (stderr); silent otherwise."""

    REDRAW_SECONDS = 0.1  # a send reports every message: redraw ten times a second at most

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.shown = False
        self.drawn = 0.0

    def __call__(self, report: DeliveryReport) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.drawn < self.REDRAW_SECONDS:
            return
        self.drawn = now
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


def print_send(summary: SendSummary) -> None:
    echo_some([f"would send {e}: {s} ({n} papers)" for e, s, n in summary.planned])
    echo_some([f"nothing new for {e}: {why}" for e, why in summary.empty])
    echo_some([f"not sent: {e}: {why}" for e, why in summary.left])
    echo_some([f"failed: {e}: {why}" for e, why in summary.failures], err=True)
    echo_some([f"will retry: {e}: {why}" for e, why in summary.retries], err=True)
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
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Send workers on this machine sharing the day's work (PostgreSQL store only).",
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
    workers: int,
) -> None:
    """Send the day's digests: each subscriber at most once per date, so reruns are safe.

    Exit status: 0 all done, 1 a send failed permanently or the run could not start,
    75 some digests are left to retry (the next run sends them).
    """
    ctx = app.context()
    digest_date = parse_day(day) or pipeline.digest_date(app.config, ctx.clock())
    if workers > 1:
        _send_with_workers(ctx, digest_date, workers, dry_run or bool(only or limit or resend))
        return
    progress = SendProgress()
    options = pipeline.SendOptions(
        dry_run=dry_run, only=list(only) or None, limit=limit, resend=resend, progress=progress
    )
    try:
        summary = pipeline.send_daily(ctx, digest_date, options)
    finally:
        progress.clear()
    print_send(summary)
    if summary.exit_code:
        sys.exit(summary.exit_code)


def _send_with_workers(ctx: pipeline.Context, day: date, workers: int, narrowed: bool) -> None:
    if not ctx.store.postgres:
        raise click.UsageError(
            '--workers needs a PostgreSQL store ([storage] database = "postgresql://..."): '
            "on SQLite one process sends (see docs/postgresql.md)"
        )
    if narrowed:
        raise click.UsageError("--workers shares the whole day: leave out --dry-run/--to/--limit")
    ctx.cfg.require_secret_key()
    summaries = send_workers.run_workers(ctx.cfg, day, workers)
    for number, summary in enumerate(summaries, start=1):
        click.echo(f"worker {number}:")
        print_send(summary)
    click.echo(f"{workers} workers sent {sum(s.sent for s in summaries):,} digests")
    code = max((s.exit_code for s in summaries), default=0)
    if code:
        sys.exit(code)


@cli.command()
@click.option(
    "--date", "day", default=None, help="Digest date (default: today in digest.timezone)."
)
@pass_app
@friendly_errors
def run(app: AppContext, day: str | None) -> None:
    """Fetch today's papers, then send today's digests (what cron runs: `make send`)."""
    fetch_progress, send_progress = FetchProgress(), SendProgress()
    try:
        fetched, summary = pipeline.run_daily(
            app.context(),
            parse_day(day),
            pipeline.SendOptions(progress=send_progress),
            on_progress=fetch_progress,
        )
    finally:
        fetch_progress.clear()
        send_progress.clear()
    for note in fetched.notes:
        click.echo(note)
    for error in fetched.errors:
        click.echo(f"error: {error}", err=True)
    click.echo(fetched.line())
    print_send(summary)
    if summary.exit_code:
        sys.exit(summary.exit_code)
    if fetched.outcome == "failed":  # every source failed: cron must hear of it
        click.echo(
            "error: no source could be fetched; digests went out from what was stored", err=True
        )
        sys.exit(1)


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
        with Database(cfg.database, password=cfg.database_password) as store:
            serve_preview_index(pipeline.Context(store, cfg), DEMO_DAY, port)
    if result.exit_code:
        sys.exit(result.exit_code)

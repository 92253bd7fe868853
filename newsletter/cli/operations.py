"""Commands for running the service: status, the scheduler daemon, the web app."""

from __future__ import annotations

import socket
import sys

import click

from newsletter.cli.base import AppContext, cli, friendly_errors, pass_app, utcnow


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
    # what every pass needs, checked once at start-up: a daemon that cannot send would
    # otherwise keep running (systemd shows it active) and fail each pass in its log
    app.config.require_secret_key()
    app.check_store()
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
    _check_listen(host, port)
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


def _check_listen(host: str, port: int) -> None:
    """Refuse in one line, before saying "serving", an address this process cannot listen on
    (the port in use, a host that is not this machine's): uvicorn would exit 3 after it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc} (another `serve`? pick "
            "--port or web.port)"
        ) from None

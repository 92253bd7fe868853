"""The `newsletter` group and what every command shares: the config and store, loaded once,
and NewsletterError turned into a one-line message (no traceback)."""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from typing import Any, TypeVar

import click

from newsletter import __version__, pipeline
from newsletter.config import Config, load_config
from newsletter.errors import NewsletterError
from newsletter.store import Database
from newsletter.subscriptions import Subscriptions

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("newsletter.cli")


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
            self._store = Database(self.config.database, password=self.config.database_password)
        return self._store

    def check_store(self) -> None:
        """Open the store (migrating it) and close it again: it works with these settings."""
        self.store.close()
        self._store = None

    def context(self) -> pipeline.Context:
        """The daily flow's context: this store and config, the real clock, SMTP from config."""
        return pipeline.Context(self.store, self.config, clock=utcnow)

    def subscriptions(self) -> Subscriptions:
        return self.context().subscriptions

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def friendly_errors(func: F) -> F:
    """Turn NewsletterError, and the file and database errors an operator can meet (a folder
    that cannot be written, a read-only or locked database), into a one-line message and exit
    status 1 (no traceback; `-vv` logs it)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NewsletterError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.Error as exc:
            log.debug("database error", exc_info=True)
            raise click.ClickException(database_message(exc)) from None
        except OSError as exc:
            log.debug("file error", exc_info=True)
            raise click.ClickException(file_message(exc)) from None

    return wrapper  # type: ignore[return-value]


def file_message(exc: OSError) -> str:
    """'cannot use PATH: REASON' for an OSError from the file system."""
    reason = exc.strerror or str(exc)
    names = [str(n) for n in (exc.filename, exc.filename2) if n is not None]
    if not names:
        return f"a file operation failed: {reason}"
    return f"cannot use {' → '.join(names)}: {reason}"


def database_message(exc: sqlite3.Error) -> str:
    """What an SQLite error means for the operator, in one line."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (
            "the database is busy: another process (a send run, the web app, a backup) held "
            "its write lock too long; nothing was changed, try again"
        )
    if "readonly" in text:
        return (
            "the database (storage.database) is read-only for this user: give it, its "
            "folder and its -wal/-shm files write permission"
        )
    if "unable to open" in text:
        return (
            "cannot open the database (storage.database): its folder must exist and be "
            "writable, and the path must not be a folder"
        )
    if "not a database" in text:
        return f"storage.database is not an SQLite database ({text})"
    return f"database error: {text}"


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


def echo_some(lines: list[str], err: bool = False, most: int = 20) -> None:
    """Print at most `most` lines, then how many more there were."""
    for line in lines[:most]:
        click.echo(line, err=err)
    if len(lines) > most:
        click.echo(f"... and {len(lines) - most:,} more", err=err)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(standalone_mode=True)
    except NewsletterError as exc:  # pragma: no cover - friendly_errors covers commands
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)

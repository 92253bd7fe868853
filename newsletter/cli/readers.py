"""Commands for the operator's side of the reader lifecycle: init, subscribe, unsubscribe,
subscribers, and `inbound` (unsubscribe requests by e-mail). The rules live in
`subscriptions.py` and `inbound.py`; these parse, call and print."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import BinaryIO

import click

from newsletter import inbound as inbound_mail
from newsletter.cli.base import AppContext, cli, friendly_errors, pass_app
from newsletter.config import EXAMPLE_CONFIG
from newsletter.errors import DeliveryError, LibraryError
from newsletter.imports import import_likes
from newsletter.models import Interest, InterestKind, SubscriberStatus
from newsletter.preferences import (
    SITE_MIX,
    TRENDING_MIXES,
    InvalidAddressError,
    InvalidPreferences,
    Preferences,
    address_for_lookup,
    normalize_address,
)
from newsletter.sources.library import MAX_LIBRARY_BYTES
from newsletter.subscriptions import SignUp

# Which option a `check_preferences` field came from, for click's "Invalid value for ..."
OPTION_OF = {
    "keywords": "--interest",
    "description": "--interest",
    "negatives": "--not",
    "categories": "--category",
    "likes": "--like",
    "authors": "--author",
    "timezone": "--timezone",
    "hour": "--hour",
    "size": "--size",
    "name": "--name",
    "trending": "--trending",
}
KEYWORD_WORDS = 4  # a longer --interest is a free-text description


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
    if target.is_dir():
        raise click.UsageError(
            f"{target} is a folder: give the config file's path, e.g. {target / 'config.toml'}"
        )
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


def flags_to_preferences(
    app: AppContext,
    interests: tuple[str, ...],
    categories: tuple[str, ...],
    likes: tuple[str, ...],
    negatives: tuple[str, ...],
    delivery: tuple[str, str | None, int | None, int | None],
    trending: str | None = None,
    authors: tuple[str, ...] = (),
) -> Preferences:
    """The command-line flags in the shape the shared validation rule checks."""
    name, timezone, hour, size = delivery
    d = app.config.digest
    return Preferences(
        keywords=[t.strip() for t in interests if len(t.split()) <= KEYWORD_WORDS],
        description="\n\n".join(t.strip() for t in interests if len(t.split()) > KEYWORD_WORDS),
        negatives=[n.strip() for n in negatives],
        categories=[c.strip() for c in categories],
        likes=[raw.strip() for raw in likes],
        authors=[a.strip() for a in authors],
        timezone=timezone or d.timezone,
        hour=d.hour if hour is None else hour,
        size=d.size if size is None else size,
        name=name,
        trending="" if trending in (None, SITE_MIX) else trending.strip(),
    )


def describe_signup(address: str, done: SignUp, confirmed: bool, wanted: int) -> str:
    """The line `subscribe` prints for what the sign-up did."""
    before = done.subscriber.status
    if done.created:
        status = "active" if confirmed else "pending"
        tail = "" if confirmed else f"; confirmation e-mail sent to {address}"
        return f"subscribed {address} ({status}) with {wanted} interest(s){tail}"
    if confirmed and before != SubscriberStatus.ACTIVE:
        return f"{address} was already subscribed ({before}); now active."
    if before in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        return (
            f"{address} is {before}; nothing changed (add --confirmed to subscribe them "
            "again, only if they asked you to)."
        )
    added = f" except {done.added} new interest(s) added" if done.added else ""
    if done.mix_changed:
        added += " and the trending mix set" if added else " except the trending mix, set"
    mailed = f"; confirmation e-mail sent again to {address}" if done.mailed else ""
    return f"{address} is already subscribed ({before}); nothing changed{added}.{mailed}"


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
@click.option(
    "--author",
    "authors",
    multiple=True,
    metavar="NAME",
    help='An author to follow, e.g. "Yann LeCun" or "LeCun, Y." (repeatable).',
)
@click.option("--timezone", default=None, help="IANA timezone, e.g. Europe/Berlin.")
@click.option(
    "--hour", type=click.IntRange(0, 23), default=None, help="Local hour of delivery (0-23)."
)
@click.option("--size", type=click.IntRange(1, 50), default=None, help="Papers per digest.")
@click.option(
    "--trending",
    default=None,
    metavar="MIX",
    help="More personal or more trending picks: "
    + ", ".join(k or SITE_MIX for k in TRENDING_MIXES)
    + f" (default {SITE_MIX}: the operator's trending_weight). Also changes a known reader's.",
)
@click.option(
    "--confirmed",
    is_flag=True,
    help="Activate now, without the opt-in e-mail (only for people who asked you directly).",
)
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
    authors: tuple[str, ...],
    timezone: str | None,
    hour: int | None,
    size: int | None,
    trending: str | None,
    confirmed: bool,
) -> None:
    """Add a subscriber and e-mail them the opt-in link (idempotent: says what it did; for a
    known address, interests, followed authors and likes given here are added)."""
    address = normalize_address(email)
    prefs = flags_to_preferences(
        app,
        interests,
        categories,
        likes,
        negatives,
        (name, timezone, hour, size),
        trending,
        authors,
    )
    try:
        done = app.subscriptions().add_by_operator(
            address, prefs, confirmed=confirmed, set_trending=trending is not None
        )
    except InvalidPreferences as exc:
        field, message = next(iter(exc.errors.items()))
        raise click.BadParameter(message, param_hint=OPTION_OF.get(field, field)) from None
    except DeliveryError as exc:  # the sign-up was stored; only its confirmation e-mail failed
        raise click.ClickException(
            f"{exc}; {address} is saved as pending: run this command again to re-send the "
            "confirmation e-mail once the relay works"
        ) from None
    click.echo(describe_signup(address, done, confirmed, len(prefs.interests())))


@cli.command()
@click.argument("email")
@pass_app
@friendly_errors
def unsubscribe(app: AppContext, email: str) -> None:
    """Unsubscribe an address (kept as 'unsubscribed' so it is never mailed again)."""
    address = address_for_lookup(email)
    sub = app.store.subscribers.get_by_email(address)
    if sub is None:
        raise not_a_subscriber(address)
    if app.subscriptions().unsubscribe(sub):
        click.echo(f"unsubscribed {address}.")
    else:
        click.echo(f"{address} was already unsubscribed.")


def not_a_subscriber(address: str) -> click.ClickException:
    """'… is not a subscriber', with why the address could not be one when it is malformed
    (the lookup itself stays lenient: an address stored before the rule can still be found)."""
    try:
        normalize_address(address)
    except InvalidAddressError as exc:
        return click.ClickException(f"{address} is not a subscriber: {exc}")
    return click.ClickException(f"{address} is not a subscriber")


@cli.command("import-likes")
@click.argument("email")
@click.argument("file", type=click.File("rb"))
@pass_app
@friendly_errors
def import_likes_command(app: AppContext, email: str, file: BinaryIO) -> None:
    """Like the arXiv papers of a BibTeX, RIS or Zotero CSL-JSON export (FILE, or - for stdin)
    for the subscriber EMAIL; papers not stored yet are fetched from the arXiv API."""
    address = address_for_lookup(email)
    sub = app.store.subscribers.get_by_email(address)
    if sub is None:
        raise not_a_subscriber(address)
    data = file.read(MAX_LIBRARY_BYTES + 1)
    try:
        report = import_likes(app.context(), sub, data)
    except LibraryError as exc:
        raise click.ClickException(f"{file.name}: {exc}; nothing was imported") from None
    click.echo(f"{address}: {report.line()}")
    for line in report.details():
        click.echo(f"  {line}")


@cli.command()
@click.argument("message", type=click.File("rb"), default="-")
@pass_app
def inbound(app: AppContext, message: BinaryIO) -> None:
    """Read one e-mail (from stdin, as an MTA pipes it, or a file) and unsubscribe the reader
    whose signed token is in its subject ("unsubscribe <token>", as the List-Unsubscribe
    mailto: sends it).

    Exit status for the MTA: 0 done or ignored, 65 refused (no valid token; the sender's
    address alone is never enough), 75 try again later (e.g. the database is unavailable).
    """
    raw = inbound_mail.read_message(message)
    outcome = inbound_mail.receive(raw, app.subscriptions)
    click.echo(outcome.message, err=outcome.status != inbound_mail.EX_OK)
    sys.exit(outcome.status)


# How `subscribers` marks an interest that is not a plain keyword, so an avoided word never
# reads as a wanted one.
_MARKS = {
    InterestKind.NOT_KEYWORD: "not: ",
    InterestKind.NOT_PAPER: "not like: ",
    InterestKind.LIKE: "like: ",
    InterestKind.CATEGORY: "category: ",
    InterestKind.AUTHOR: "author: ",
}


def _listed(interest: Interest) -> str:
    return _MARKS.get(interest.kind, "") + interest.value


@cli.command()
@click.option("--status", type=click.Choice([s.value for s in SubscriberStatus]), default=None)
@pass_app
@friendly_errors
def subscribers(app: AppContext, status: str | None) -> None:
    """List subscribers as a table."""
    subs = app.store.subscribers.list(SubscriberStatus(status) if status else None)
    interests = app.store.subscribers.interests_for_many([s.id for s in subs])
    click.echo(
        f"{'id':>5}  {'email':<32} {'status':<12} {'tz':<18} {'hour':>4} {'size':>4}  "
        f"{'mix':<13} interests"
    )
    for s in subs:
        what = ", ".join(_listed(i) for i in interests.get(s.id, []))
        click.echo(
            f"{s.id:>5}  {s.email:<32} {s.status:<12} {s.timezone:<18} "
            f"{s.delivery_hour:>4} {s.digest_size:>4}  {s.trending_mix or SITE_MIX:<13} {what[:60]}"
        )
    click.echo(f"{len(subs)} subscriber(s)")

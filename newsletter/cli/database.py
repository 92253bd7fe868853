"""Commands for the database itself: upgrade its schema, move an installation to PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter.cli.base import AppContext, cli, friendly_errors, pass_app
from newsletter.errors import NewsletterError
from newsletter.storage_config import PASSWORD_ENV
from newsletter.store import Database, schema
from newsletter.store.dialect import is_postgres_url


@cli.command()
@pass_app
@friendly_errors
def migrate(app: AppContext) -> None:
    """Upgrade the database's schema (SQLite or PostgreSQL) to this version's.

    Every command migrates on its own when it opens the database; run this after an upgrade
    to do it at a chosen moment (several machines may run it at once: one does the work).
    """
    cfg = app.config
    with Database(cfg.database, password=cfg.database_password, migrate=False) as store:
        before = store.schema_version
        latest = len(schema.MIGRATIONS)
        if before > latest:
            raise NewsletterError(
                f"{store.location} is at schema version {before}, newer than this newsletter"
                f" ({latest}): upgrade newsletter instead"
            )
        store.migrate()
        after = store.schema_version
    if before == after:
        click.echo(f"{store.location}: schema version {after}, up to date")
    else:
        click.echo(f"{store.location}: schema version {before} → {after}")


@cli.command("copy-db")
@click.argument("sqlite_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("postgres_url")
@friendly_errors
def copy_db(sqlite_path: Path, postgres_url: str) -> None:
    """Copy a SQLite installation into an empty PostgreSQL database, every row, and verify it.

    Both are migrated to this version's schema first. Prints each table's row counts and
    SHA-256 on both sides; exits 1 unless all match. Stop the senders and the web app first,
    then point [storage] database at the URL. The password comes from the URL,
    NEWSLETTER_DATABASE_PASSWORD, PGPASSWORD or ~/.pgpass.
    """
    import os

    from newsletter.store.copy import copy_database

    if not is_postgres_url(postgres_url):
        raise click.BadParameter("must be a postgresql:// URL", param_hint="POSTGRES_URL")
    password = os.environ.get(PASSWORD_ENV, "")
    with Database(sqlite_path) as source, Database(postgres_url, password=password) as target:
        results = copy_database(source, target)
        where = target.location
    width = max(len(r.table) for r in results)
    for r in results:
        mark = "ok" if r.ok else "MISMATCH"
        click.echo(
            f"{r.table:<{width}}  {r.source_rows:>9,} → {r.target_rows:>9,} rows"
            f"  sha256 {r.source_sha256[:16]} → {r.target_sha256[:16]}  {mark}"
        )
    bad = [r.table for r in results if not r.ok]
    if bad:
        click.echo(f"copy-db: {', '.join(bad)} differ: do not switch over", err=True)
        sys.exit(1)
    total = sum(r.source_rows for r in results)
    click.echo(f"copied {total:,} rows in {len(results)} tables into {where}: all verified")
    click.echo("next: set [storage] database to that URL in config.toml (docs/postgresql.md)")

"""The schema, as an ordered list of migrations, the same for SQLite and PostgreSQL.

A migration is never edited once released: a change to the schema is a new step at the end,
so every existing database reaches the same schema. SQLite counts the steps applied in
`PRAGMA user_version`, PostgreSQL in the `newsletter_schema` table.

Steps are written in SQLite's SQL and run through a `Migrator`, whose `execute` rewrites DDL
for PostgreSQL (`dialect.Dialect.ddl`): a plain `CREATE TABLE` or `ALTER TABLE ... ADD COLUMN`
step runs on both unchanged. Where the two cannot share a statement, the step asks
`db.dialect.postgres`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from newsletter.store.dialect import Dialect
from newsletter.store.search import pg_document


class _Conn(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...


class Migrator:
    """What a migration step runs its statements through."""

    def __init__(self, conn: _Conn, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.conn.execute(self.dialect.ddl(sql), params)


Migration = Callable[[Migrator], None]


def _m1_initial(db: Migrator) -> None:
    _create_papers(db)
    _create_subscribers(db)
    _create_sends_and_runs(db)


def _create_papers(db: Migrator) -> None:
    """Papers keyed by arXiv ID (the columns sqlite_utils created here before: same table)."""
    db.execute("""
        CREATE TABLE papers (
            id TEXT PRIMARY KEY,
            version INTEGER,
            title TEXT,
            abstract TEXT,
            authors TEXT,
            categories TEXT,
            primary_category TEXT,
            announce_type TEXT,
            announced TEXT,
            published TEXT,
            abs_url TEXT,
            pdf_url TEXT,
            upvotes INTEGER,
            comments INTEGER,
            github_repo TEXT,
            github_stars INTEGER,
            ai_keywords TEXT,
            ai_summary TEXT,
            hf_date TEXT,
            sources TEXT,
            journal_ref TEXT,
            doi TEXT,
            first_seen TEXT,
            updated TEXT
        )""")
    db.execute("CREATE INDEX idx_papers_announced ON papers (announced)")
    db.execute("CREATE INDEX idx_papers_hf_date ON papers (hf_date)")


def _create_subscribers(db: Migrator) -> None:
    """Subscribers with their interests and feedback."""
    db.execute("""
        CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending',
            timezone TEXT NOT NULL DEFAULT 'UTC',
            delivery_hour INTEGER NOT NULL DEFAULT 7,
            digest_size INTEGER NOT NULL DEFAULT 10,
            hard_failures INTEGER NOT NULL DEFAULT 0,
            created_at TEXT, confirmed_at TEXT, updated_at TEXT
        )""")
    if db.dialect.postgres:  # NOCASE's job: one address, whatever its case
        db.execute("ALTER TABLE subscribers DROP CONSTRAINT subscribers_email_key")
        db.execute("CREATE UNIQUE INDEX idx_subscribers_email_nocase ON subscribers (lower(email))")
    db.execute("""
        CREATE TABLE interests (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            kind TEXT NOT NULL, value TEXT NOT NULL, weight REAL NOT NULL DEFAULT 1.0,
            created_at TEXT,
            UNIQUE (subscriber_id, kind, value)
        )""")
    db.execute("""
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            paper_id TEXT NOT NULL, vote INTEGER NOT NULL, created_at TEXT,
            UNIQUE (subscriber_id, paper_id)
        )""")


def _create_sends_and_runs(db: Migrator) -> None:
    """The send ledger, fetch state and runs."""
    db.execute("""
        CREATE TABLE sends (
            id INTEGER PRIMARY KEY,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            digest_date TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            message_id TEXT, paper_ids TEXT NOT NULL DEFAULT '[]',
            last_error TEXT, claimed_at TEXT, sent_at TEXT, updated_at TEXT,
            UNIQUE (subscriber_id, digest_date)
        )""")
    db.execute("CREATE INDEX idx_sends_date_status ON sends (digest_date, status)")
    db.execute("""
        CREATE TABLE fetch_state (
            url TEXT PRIMARY KEY, source TEXT NOT NULL,
            etag TEXT, last_modified TEXT, last_success TEXT, last_count INTEGER,
            last_error TEXT, last_error_at TEXT
        )""")
    db.execute("""
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, started_at TEXT NOT NULL,
            finished_at TEXT, outcome TEXT, summary TEXT
        )""")


def _m2_signup_requests(db: Migrator) -> None:
    """Sign-ups waiting for the owner's confirmation, with the settings they would apply: whoever
    types a known address into the form may not own it, so nothing stored changes until the
    link mailed to that address is used. AUTOINCREMENT: a link never names a later request."""
    db.execute("""
        CREATE TABLE signup_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            created_at TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '', timezone TEXT, delivery_hour INTEGER,
            digest_size INTEGER, interests TEXT
        )""")
    db.execute("CREATE INDEX idx_signup_requests_subscriber ON signup_requests (subscriber_id)")


def _m3_rate_limits_and_link_nonces(db: Migrator) -> None:
    _create_rate_hits(db)
    _subscriber_ids_never_reused(db)
    _subscriber_link_nonces(db)


def _create_rate_hits(db: Migrator) -> None:
    """One row per counted event (a sign-up, a confirmation e-mail) per limit key, so every
    process sharing the file sees the same counts and a restart forgets none."""
    db.execute("""
        CREATE TABLE rate_hits (
            id INTEGER PRIMARY KEY, key TEXT NOT NULL, at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX idx_rate_hits_key_at ON rate_hits (key, at)")
    db.execute("CREATE INDEX idx_rate_hits_at ON rate_hits (at)")


def _subscriber_ids_never_reused(db: Migrator) -> None:
    """Rebuild `subscribers` with AUTOINCREMENT, keeping every row, id, index and trigger.

    Without it SQLite hands the highest deleted id (an expired sign-up's) to the next row, and
    a link minted for the deleted row would act on the new one. The new table is made from the
    stored CREATE statement, so columns added by earlier migrations survive. `Database.migrate`
    turns foreign keys off, so dropping the old table does not cascade into child rows.
    PostgreSQL's identity columns never hand out an id twice: nothing to rebuild there.
    """
    if db.dialect.postgres:
        return
    table_sql = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'subscribers'"
    ).fetchone()[0]
    renamed, named = re.subn(
        r'^CREATE TABLE\s+"?subscribers"?', "CREATE TABLE subscribers_rebuilt", table_sql
    )
    new_sql, found = re.subn(
        r"\bid INTEGER PRIMARY KEY\b(?! AUTOINCREMENT)",
        "id INTEGER PRIMARY KEY AUTOINCREMENT",
        renamed,
        count=1,
    )
    if named != 1 or found != 1:
        raise RuntimeError(f"unexpected subscribers table: {table_sql}")
    extras = db.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'subscribers'"
        " AND type IN ('index', 'trigger') AND sql IS NOT NULL"
    ).fetchall()
    db.execute(new_sql)
    db.execute("INSERT INTO subscribers_rebuilt SELECT * FROM subscribers")
    db.execute("DROP TABLE subscribers")
    db.execute("ALTER TABLE subscribers_rebuilt RENAME TO subscribers")
    for (sql,) in extras:
        db.execute(sql)


def _subscriber_link_nonces(db: Migrator) -> None:
    """Every link names its subscriber's nonce, so it dies with the row it was minted for.

    Rows that exist now get a nonce and `legacy_links = 1`: links already sent (which carry no
    nonce) keep working for them. Rows added later get 0 and accept only links with their nonce.
    """
    db.execute("ALTER TABLE subscribers ADD COLUMN nonce TEXT NOT NULL DEFAULT ''")
    db.execute("ALTER TABLE subscribers ADD COLUMN legacy_links INTEGER NOT NULL DEFAULT 0")
    db.execute(f"UPDATE subscribers SET nonce = {db.dialect.random_hex(8)}, legacy_links = 1")


def _m4_paper_search(db: Migrator) -> None:
    """Full-text search over titles, abstracts and authors, kept in step by triggers.

    The index holds no copy of the text (`content=papers`): the triggers write the same
    statement's old and new values, so it changes in the transaction that changes a paper.
    Existing databases are indexed by the `rebuild` at the end. Every statement may run twice
    (IF NOT EXISTS, a rebuild), so a file that met this step under another number is fine.
    PostgreSQL indexes the same text as a tsvector (GIN), which needs no triggers.
    """
    if db.dialect.postgres:
        db.execute(
            f"CREATE INDEX IF NOT EXISTS idx_papers_search ON papers USING GIN ({pg_document()})"
        )
        return
    db.execute("""
        CREATE VIRTUAL TABLE IF NOT EXISTS papers_fts USING fts5(
            title, abstract, authors, content='papers', content_rowid='rowid',
            tokenize='porter unicode61 remove_diacritics 2'
        )""")
    db.execute("""
        CREATE TRIGGER IF NOT EXISTS papers_fts_insert AFTER INSERT ON papers BEGIN
            INSERT INTO papers_fts(rowid, title, abstract, authors)
            VALUES (new.rowid, new.title, new.abstract, new.authors);
        END""")
    db.execute("""
        CREATE TRIGGER IF NOT EXISTS papers_fts_delete AFTER DELETE ON papers BEGIN
            INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
            VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
        END""")
    db.execute("""
        CREATE TRIGGER IF NOT EXISTS papers_fts_update
        AFTER UPDATE OF title, abstract, authors ON papers BEGIN
            INSERT INTO papers_fts(papers_fts, rowid, title, abstract, authors)
            VALUES ('delete', old.rowid, old.title, old.abstract, old.authors);
            INSERT INTO papers_fts(rowid, title, abstract, authors)
            VALUES (new.rowid, new.title, new.abstract, new.authors);
        END""")
    db.execute("INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')")


# `_m4_paper_search` reads nothing the steps before it add: it may follow any of them.


def _m5_trending_mix(db: Migrator) -> None:
    """A reader's own blend of trending and relevance ('' follows the operator's setting).

    Plain portable DDL: the PostgreSQL backend runs the same statement."""
    db.execute("ALTER TABLE subscribers ADD COLUMN trending_mix TEXT NOT NULL DEFAULT ''")


def _m6_upvote_history(db: Migrator) -> None:
    """One Hugging Face upvote count per paper per day it was seen, so a paper that gains
    traction after its first day is noticed (ranking/traction.py). Plain SQL that PostgreSQL
    runs as written; IF NOT EXISTS, so the step may run under another number."""
    db.execute("""
        CREATE TABLE IF NOT EXISTS upvote_history (
            paper_id TEXT NOT NULL,
            day TEXT NOT NULL,
            upvotes INTEGER NOT NULL,
            PRIMARY KEY (paper_id, day)
        )""")
    db.execute("CREATE INDEX IF NOT EXISTS idx_upvote_history_day ON upvote_history (day)")


def _m7_send_claims(db: Migrator) -> None:
    """The day's work shared by send workers (store/claims.py): one row per subscriber per
    digest date, taken by one worker for a lease, then done; and the workers' heartbeats.
    Plain DDL: it reads nothing the steps before it add (5 and 6 may come between)."""
    db.execute("""
        CREATE TABLE IF NOT EXISTS send_queue (
            digest_date TEXT NOT NULL,
            subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
            state TEXT NOT NULL DEFAULT 'queued',
            worker TEXT, lease_until REAL, takes INTEGER NOT NULL DEFAULT 0,
            queued_at TEXT, claimed_at TEXT, done_at TEXT,
            PRIMARY KEY (digest_date, subscriber_id)
        )""")
    db.execute("CREATE INDEX IF NOT EXISTS idx_send_queue_state ON send_queue (digest_date, state)")
    db.execute("""
        CREATE TABLE IF NOT EXISTS send_workers (
            worker TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
            digest_date TEXT, started_at TEXT NOT NULL, heartbeat_at REAL NOT NULL,
            finished_at TEXT, sent INTEGER NOT NULL DEFAULT 0
        )""")


def _m8_sends_by_sent_at(db: Migrator) -> None:
    """The rows a subscriber was sent since a time (`Sends.sent_paper_ids`): the no-repeat
    rule reads only those that can name the day's candidates, not the whole history."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_sends_subscriber_sent ON sends (subscriber_id, sent_at)"
    )


MIGRATIONS: list[Migration] = [
    _m1_initial,
    _m2_signup_requests,
    _m3_rate_limits_and_link_nonces,
    _m4_paper_search,
    _m5_trending_mix,
    _m6_upvote_history,
    _m7_send_claims,
    _m8_sends_by_sent_at,
]

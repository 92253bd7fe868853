"""The exceptions either backend raises, as tuples for `except` (psycopg is optional)."""

from __future__ import annotations

import sqlite3

try:
    import psycopg
except ImportError:  # pragma: no cover - the postgres extra is not installed
    INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
    OPERATIONAL_ERRORS: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
    DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)
    # What a page shows as "the database is unavailable" (locked, down, damaged).
    UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
else:
    INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)
    OPERATIONAL_ERRORS = (sqlite3.OperationalError, psycopg.OperationalError)
    DATABASE_ERRORS = (sqlite3.Error, psycopg.Error)
    UNAVAILABLE_ERRORS = (
        sqlite3.OperationalError,
        psycopg.OperationalError,
        psycopg.ProgrammingError,  # a table or column missing: a damaged or unmigrated schema
        psycopg.InterfaceError,
    )

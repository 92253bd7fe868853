"""The store: the only place that writes SQL.

One `Database` (the SQLite file, WAL, migrations, transactions) hands out a repository per
concept: `papers`, `subscribers` (with interests and feedback), `sends` (the ledger),
`runs` (with fetch state) and `limits` (rate limits every process shares). Typed records
from `newsletter.models` cross this boundary.
"""

from newsletter.store.database import Database, is_busy
from newsletter.store.papers import UpsertResult, merge_papers

__all__ = ["Database", "UpsertResult", "is_busy", "merge_papers"]

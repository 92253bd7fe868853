"""The whole flow in one readable place: fetch, rank, render, deliver.

CLI, web and scheduler call these functions, never the stages in their own order.
The functions (each added by the stage that owns it):

- `fetch_all(store, cfg, now, *, transport=None, day=None, sources=None) -> FetchSummary`
- `build_digests(store, cfg, digest_date, now, subscribers=None) -> list[Digest]`
- `send_daily(store, cfg, mailer, digest_date, now, ...) -> SendSummary`
"""

from __future__ import annotations

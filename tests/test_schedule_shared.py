"""Two `newsletter schedule` daemons on one PostgreSQL database (as on two machines): the
schedule's fetch runs once, and each due subscriber gets one digest."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsletter.store import Database
from tests.conftest import SECRET, SMTPSink
from tests.test_schedule_daemon import (
    NEWSLETTER,
    WAIT_LIMIT,
    _FeedServer,
    recipients,
    seed,
    write_config,
)


class _SlowFeeds(_FeedServer):
    """The recorded feeds, each answer a second late: the first daemon is still fetching
    when the second one looks."""

    def finish_request(self, request: Any, client_address: Any) -> None:
        time.sleep(1.0)
        super().finish_request(request, client_address)


def test_two_daemons_on_one_database_fetch_once_and_send_once(
    tmp_path: Path, smtp_server: SMTPSink, pg_url: str
) -> None:
    feeds = _SlowFeeds()
    threading.Thread(target=feeds.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{feeds.server_address[1]}"
        config = write_config(tmp_path, smtp_server)
        text = config.read_text("utf-8").replace('"data/newsletter.db"', f'"{pg_url}"')
        config.write_text(
            text
            + f'[sources]\narxiv_rss_url = "{base}/rss"\n'
            + f'huggingface_url = "{base}/api/daily_papers"\ncontact_email = "ops@example.org"\n',
            "utf-8",
        )
        seed(pg_url, datetime.now(UTC))  # type: ignore[arg-type]
        env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
        cmd = [str(NEWSLETTER), "--config", str(config), "schedule", "--once"]
        daemons = [
            subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
            )
            for _ in range(2)
        ]
        errs = [d.communicate(timeout=WAIT_LIMIT * 4)[1] for d in daemons]
    finally:
        feeds.shutdown()
        feeds.server_close()
    assert [d.returncode for d in daemons] == [0, 0], errs
    assert sum(e.count("fetch: starting") for e in errs) == 1, errs
    with Database(pg_url) as store:
        assert len(store.runs.last("fetch", limit=10)) == 1
        # Each daemon sent what it took from the shared queue (a late one may find none due).
        assert 1 <= len(store.runs.last("send", limit=10)) <= 2
    got = recipients(smtp_server)
    assert Counter(got) == Counter(
        ["kiritimati@example.org", "ny@example.org", "utc@example.org"]
    ), got

"""Two real `newsletter serve` processes on one PostgreSQL database, as behind one proxy:
nothing a request needs lives in one process's memory."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from newsletter.models import SubscriberStatus
from newsletter.store import Database
from tests.conftest import SECRET, free_port
from tests.web_support import csrf_tokens, link_in, outbox, path_of, running_serve


def _form(email: str, token: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "email": email,
        "keywords": "reinforcement learning",
        "timezone": "UTC",
        "hour": "7",
        "size": "10",
    }


def test_two_serve_processes_share_forms_limits_and_links(tmp_path: Path, pg_url: str) -> None:
    ports = [free_port(), free_port()]
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ndatabase = "{pg_url}"\n'
        f'[site]\nbase_url = "http://127.0.0.1:{ports[0]}"\nname = "Served Digest"\n'
        '[delivery]\nmethod = "maildir:outbox"\n'
        "[web]\nconfirm_per_address_per_day = 1\n",
        encoding="utf-8",
    )
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": SECRET}
    with (
        running_serve(config, ports[0], env) as a,
        running_serve(config, ports[1], env) as b,
        httpx.Client(base_url=a) as at_a,
        httpx.Client(base_url=b) as at_b,
    ):
        token = csrf_tokens(at_a.get("/subscribe").text)[0]
        at_b.cookies.update(at_a.cookies)  # the proxy sent the form's POST to the other one
        assert at_b.post("/", data=_form("ann@example.org", token)).status_code == 200
        # The confirmation mail was counted by B: A refuses a second one for that mailbox.
        token = csrf_tokens(at_a.get("/subscribe").text)[0]
        again = at_a.post("/", data=_form("ann+2@example.org", token))
        assert again.status_code == 429
        (mail,) = outbox(tmp_path / "outbox")
        confirm = path_of(link_in(mail, "/confirm/"))
        assert at_a.get(confirm).status_code == 200  # minted by B, opened at A
        assert at_a.post(confirm).status_code == 200
    with Database(pg_url) as store:
        sub = store.subscribers.get_by_email("ann@example.org")
        assert sub is not None and sub.status == SubscriberStatus.ACTIVE

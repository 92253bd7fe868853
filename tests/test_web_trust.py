"""The web app against abuse and a busy database (Starlette TestClient on a real SQLite file):
sign-up limits kept in the database, links that die with their row, unsubscribes that land
while another connection holds the write lock, and request bodies cut off at the cap."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter import links
from newsletter.models import SubscriberStatus
from newsletter.web.app import create_app
from newsletter.web.core import BUSY_TIMEOUT
from newsletter.web.security import client_network, mailbox_key
from tests.test_store_ids import _first_release_file
from tests.test_web import Site, open_site
from tests.web_support import TestClient, csrf_tokens, old_token, outbox, path_of


@pytest.fixture
def sqlite_site(tmp_path: Path) -> Iterator[Site]:
    with open_site(tmp_path) as s:
        yield s


@pytest.fixture
def site(tmp_path: Path, database_target: str) -> Iterator[Site]:
    with open_site(tmp_path, database=database_target) as s:
        yield s


def _sign_up(site: Site, address: str, client: str, app: object = None) -> int:
    """One sign-up from the network address `client` (its own browser: cookie, CSRF field)."""
    with TestClient(app or site.app, client=(client, 40000)) as browser:
        token = csrf_tokens(browser.get("/subscribe").text)[0]
        fields = {"csrf_token": token, "email": address, "keywords": "diffusion"}
        fields.update(timezone="UTC", hour="7", size="5")
        return browser.post("/", data=fields).status_code


# ---------------------------------------------------------------- sign-up limits


def test_mail_bombing_one_mailbox_through_tags_from_a_rotating_ipv6_64(site: Site) -> None:
    answers = [
        _sign_up(site, f"victim+{n}@example.net", f"2001:db8:1:2::{n + 1:x}") for n in range(12)
    ]
    assert answers[:3] == [200, 200, 200] and set(answers[3:]) == {429}
    assert len(outbox(site.outbox)) == 3  # confirm_per_address_per_day
    counted = site.db.conn.execute("SELECT key, count(*) FROM rate_hits GROUP BY key").fetchall()
    # Every attempt counted against the one /64 (the first 5 of them: then it was refused).
    assert ("signup:2001:db8:1:2::/64", 5) in counted


def test_the_mailbox_limit_folds_gmail_dots_and_googlemail(tmp_path: Path) -> None:
    site = Site(tmp_path, "[web]\nconfirm_per_address_per_day = 1\n")
    assert _sign_up(site, "a.d.a+news@gmail.com", "192.0.2.1") == 200
    assert _sign_up(site, "ADA@googlemail.com", "192.0.2.2") == 429
    assert _sign_up(site, "a.d.a@example.org", "192.0.2.3") == 200  # dots count elsewhere
    assert _sign_up(site, "ada@example.org", "192.0.2.4") == 200
    assert len(outbox(site.outbox)) == 3


def test_per_domain_and_global_caps_on_confirmation_mails(tmp_path: Path) -> None:
    site = Site(tmp_path, "[web]\nconfirm_per_domain_per_hour = 2\nconfirm_per_hour = 3\n")
    clients = iter(f"198.51.100.{n}" for n in range(1, 20))
    assert [_sign_up(site, f"{u}@example.net", next(clients)) for u in "abc"] == [200, 200, 429]
    assert _sign_up(site, "d@example.com", next(clients)) == 200
    assert _sign_up(site, "e@example.org", next(clients)) == 429  # 3 mails this hour in all
    assert len(outbox(site.outbox)) == 3
    site.clock.advance(hours=1, seconds=1)
    assert _sign_up(site, "e@example.org", next(clients)) == 200


def test_limits_hold_across_a_restart_and_a_second_process(tmp_path: Path) -> None:
    site = Site(tmp_path, "[web]\nconfirm_per_address_per_day = 1\n")
    assert _sign_up(site, "ann@example.org", "192.0.2.1") == 200
    second = create_app(site.cfg, now=site.clock)  # another `serve` on the same file
    assert _sign_up(site, "ann+again@example.org", "192.0.2.2", app=second) == 429
    assert len(outbox(site.outbox)) == 1


def test_what_the_limits_count() -> None:
    assert mailbox_key("Victim+7@Example.NET") == "victim@example.net"
    assert mailbox_key("v.i.c.t.i.m+x@googlemail.com") == "victim@gmail.com"
    assert mailbox_key("first.last@example.org") == "first.last@example.org"
    assert client_network("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert client_network("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_network("192.0.2.7") == "192.0.2.7"


# ---------------------------------------------------------------- links die with their row


def test_a_link_minted_for_a_deleted_sign_up_never_acts_on_the_next_reader(site: Site) -> None:
    assert site.subscribe("first@example.org").status_code == 200
    first = site.db.subscribers.get_by_email("first@example.org")
    assert first is not None
    one_click = path_of(links.unsubscribe_url(site.cfg, first))
    manage = path_of(links.manage_url(site.cfg, first))
    site.clock.advance(days=8)
    assert site.subscribe("second@example.org").status_code == 200  # expires the first
    assert site.db.subscribers.get(first.id) is None
    second = site.db.subscribers.get_by_email("second@example.org")
    assert second is not None and second.id != first.id
    # Even a row that does get the old id (restored from a backup, say) is not the old row.
    site.db.conn.execute(
        "INSERT INTO subscribers (id, email, status, nonce) VALUES (?, ?, 'active', ?)",
        [first.id, "reused@example.org", "0123456789abcdef"],
    )
    for sid in (second.id, first.id):
        site.db.subscribers.set_status(sid, SubscriberStatus.ACTIVE, site.clock())
    r = site.client.post(one_click, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200
    assert site.status(first.id) == "active" and site.status(second.id) == "active"
    assert site.client.get(manage).status_code == 410


def test_links_sent_before_nonces_work_only_for_rows_that_existed_then(tmp_path: Path) -> None:
    cfg_path = tmp_path / "data" / "newsletter.db"
    cfg_path.parent.mkdir()
    _first_release_file(cfg_path)  # ann (1, active), bob (2, unsubscribed); 3 was deleted
    site = Site(tmp_path)  # opening it migrates
    assert site.client.get("/manage/" + old_token("manage", 1, 0)).status_code == 200
    assert site.client.post("/unsubscribe/" + old_token("unsubscribe", 1, 0)).status_code == 200
    assert site.status(1) == "unsubscribed"
    new, _ = site.db.subscribers.add(
        "dee@example.org", site.clock(), status=SubscriberStatus.ACTIVE
    )
    assert new.id == 3  # the deleted row's id: its old links must not work for dee
    assert site.client.get("/manage/" + old_token("manage", 3, 0)).status_code == 410
    site.client.post("/unsubscribe/" + old_token("unsubscribe", 3, 0))
    assert site.status(3) == "active"
    assert site.client.get(path_of(links.manage_url(site.cfg, new))).status_code == 200


# ---------------------------------------------------------------- a busy database


class WriteLock:
    """Another connection holding the write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("ROLLBACK")
        self.conn.close()


def _wait_for(check: object, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_one_click_while_the_database_is_locked_is_answered_and_lands(sqlite_site: Site) -> None:
    site = sqlite_site  # SQLite's file lock: PostgreSQL has none
    sid = site.active()
    lock = WriteLock(site.cfg.database_path)
    try:
        started = time.monotonic()
        r = site.client.post(site.token_path("unsubscribe", "unsubscribe", sid))
        took = time.monotonic() - started
        assert r.status_code == 200 and "You are unsubscribed" in r.text
        assert took < BUSY_TIMEOUT + 2
        assert site.status(sid) == "active"  # not written yet: the lock is still held
        assert len(site.app.state.web.unsubscribes.pending()) == 1
    finally:
        lock.release()
    assert _wait_for(lambda: site.status(sid) == "unsubscribed")
    assert _wait_for(lambda: site.app.state.web.unsubscribes.pending() == [])
    assert len(outbox(site.outbox)) == 1  # the notice, sent by the queue before it forgot it


def test_a_queued_unsubscribe_lands_at_the_next_start(sqlite_site: Site) -> None:
    site = sqlite_site  # SQLite's file lock: PostgreSQL has none
    sid = site.active()
    web = site.app.state.web
    lock = WriteLock(site.cfg.database_path)
    try:
        assert site.client.post(site.token_path("unsubscribe", "unsubscribe", sid)).is_success
        web.unsubscribes.stop()  # the server stops before the lock is free
    finally:
        lock.release()
    assert site.status(sid) == "active" and len(web.unsubscribes.pending()) == 1
    create_app(site.cfg, now=site.clock)  # the next start
    assert _wait_for(lambda: site.status(sid) == "unsubscribed")


def test_a_page_that_cannot_get_the_write_lock_says_busy(sqlite_site: Site) -> None:
    site = sqlite_site  # SQLite's file lock: PostgreSQL has none
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    token = csrf_tokens(site.client.get(path).text)[0]  # the pause button's form
    lock = WriteLock(site.cfg.database_path)
    try:
        r = site.client.post(path + "/pause", data={"csrf_token": token})
    finally:
        lock.release()
    assert r.status_code == 503 and "Busy" in r.text and r.headers["retry-after"]
    assert site.status(sid) == "active"


# ---------------------------------------------------------------- request bodies


def test_a_chunked_body_is_cut_off_at_the_cap(site: Site) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: only counting can stop it
        for _ in range(200):
            yield b"x" * 8192

    site.form_token()
    r = site.client.post(
        "/", content=chunks(), headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 413 and r.headers["x-content-type-options"] == "nosniff"
    assert site.db.subscribers.list() == []

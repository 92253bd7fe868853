"""The web app in a real headless Chromium, against a real uvicorn server on 127.0.0.1, with
confirmation e-mails going over real SMTP to aiosmtpd and the database read back from SQLite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter import links
from newsletter.config import Config, parse_config
from newsletter.models import InterestKind, Subscriber, SubscriberStatus
from newsletter.store import Database
from tests.conftest import SECRET, SMTPSink, free_port
from tests.web_support import app_in_thread, link_in, tamper

PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1280, "height": 900}
# Playwright's Chromium reports navigator.webdriver = true, as link scanners built on browser
# automation do; a person's browser reports false.
AS_A_PERSON = "Object.defineProperty(Navigator.prototype, 'webdriver', {get: () => false})"


@dataclass
class LiveSite:
    base: str
    cfg: Config
    db: Database
    smtp: SMTPSink
    shots: Path

    def sub(self, sid: int) -> Subscriber:
        found = self.db.subscribers.get(sid)
        assert found is not None
        return found

    def wait_for_mail(self, count: int) -> list[Any]:
        """The SMTP server's messages once `count` have arrived (the send is synchronous)."""
        deadline = time.monotonic() + 10
        while len(self.smtp.messages()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.smtp.messages()

    def subscriber(self, email: str) -> Any:
        sub = self.db.subscribers.get_by_email(email)
        assert sub is not None
        return sub


def live_config(tmp_path: Path, port: int, smtp: SMTPSink) -> Config:
    text = f"""
[storage]
database = "data/newsletter.db"
[site]
base_url = "http://127.0.0.1:{port}"
name = "Browser Digest"
operator_name = "Test Lab"
postal_address = "1 Test Street"
[sources]
arxiv_categories = ["cs.LG", "cs.CL", "cs.CV", "stat.ML"]
[delivery]
method = "smtp"
[smtp]
host = "{smtp.host}"
port = {smtp.port}
security = "none"
timeout_seconds = 10
"""
    return parse_config(text, base_dir=tmp_path, env={"NEWSLETTER_SECRET_KEY": SECRET})


@pytest.fixture
def live(tmp_path: Path, smtp_server: SMTPSink) -> Iterator[LiveSite]:
    port = free_port()
    cfg = live_config(tmp_path, port, smtp_server)
    db = Database(cfg.database_path)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        with app_in_thread(cfg, port) as base:
            yield LiveSite(base, cfg, db, smtp_server, shots)
    finally:
        db.close()


def person(browser: Any, **options: Any) -> Any:
    """A browser context that looks like a person's browser, not an automated one."""
    context = browser.new_context(**options)
    context.add_init_script(AS_A_PERSON)
    return context


def heading(page: Any, text: str) -> None:
    """Wait for the page (after act.js sends its form) to show this <h1>."""
    page.locator("h1", has_text=text).wait_for(timeout=10_000)


def no_horizontal_overflow(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_sign_up_confirm_and_manage_in_chromium(browser: Any, live: LiveSite) -> None:
    context = person(browser, viewport=PHONE, timezone_id="Asia/Tokyo")
    page = context.new_page()
    console_errors: list[str] = []  # a CSP violation (inline script or style) shows up here
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(live.base + "/subscribe")
    assert page.input_value("#timezone") == "Asia/Tokyo"  # prefilled by tz.js
    assert no_horizontal_overflow(page)
    page.screenshot(path=str(live.shots / "subscribe-phone.png"), full_page=True)
    page.fill("#email", "reader@example.org")
    page.fill("#keywords", "mixture of experts, <b>routing</b>")
    page.check("input[name=categories][value='cs.CL']")
    page.select_option("#hour", "6")
    page.select_option("#size", "5")
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Check your inbox"

    mails = live.wait_for_mail(1)
    assert len(mails) == 1
    assert mails[0]["To"].addresses[0].addr_spec == "reader@example.org"
    sub = live.subscriber("reader@example.org")
    assert sub.status == SubscriberStatus.PENDING
    assert (sub.timezone, sub.delivery_hour, sub.digest_size) == ("Asia/Tokyo", 6, 5)

    page.goto(link_in(mails[0], "/confirm/"))  # one click: act.js sends the form
    heading(page, "You're in")
    assert live.subscriber("reader@example.org").status == SubscriberStatus.ACTIVE

    page.click("text=Manage preferences")
    assert page.input_value("#keywords") == "mixture of experts, <b>routing</b>"
    assert no_horizontal_overflow(page)
    page.screenshot(path=str(live.shots / "manage-phone.png"), full_page=True)
    page.fill("#keywords", "state space models")
    page.fill("#negatives", "vision")
    page.uncheck("input[name=categories][value='cs.CL']")
    page.check("input[name=categories][value='stat.ML']")
    page.click("text=Save preferences")
    assert "Saved." in page.inner_text(".notice")
    got = {(i.kind, i.value) for i in live.db.subscribers.interests_for(sub.id)}
    assert got == {
        (InterestKind.KEYWORD, "state space models"),
        (InterestKind.CATEGORY, "stat.ML"),
        (InterestKind.NOT_KEYWORD, "vision"),
    }
    page.click("text=Pause the digest")
    assert live.subscriber("reader@example.org").status == SubscriberStatus.PAUSED
    page.click("text=Resume the digest")
    assert live.subscriber("reader@example.org").status == SubscriberStatus.ACTIVE
    assert console_errors == []
    context.close()


def test_sign_up_works_without_javascript(browser: Any, live: LiveSite) -> None:
    context = browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    page = context.new_page()
    page.goto(live.base + "/subscribe")
    assert page.input_value("#timezone") == "UTC"  # the config default, no prefill
    assert no_horizontal_overflow(page)
    page.screenshot(path=str(live.shots / "subscribe-desktop.png"), full_page=True)
    page.fill("#email", "not an address")
    page.fill("#keywords", "graphs")
    page.click("button[type=submit]")
    assert "not a valid e-mail address" in page.inner_text("#email-error")
    assert page.input_value("#keywords") == "graphs"  # nothing typed is lost
    page.fill("#email", "nojs@example.org")
    page.click("button[type=submit]")
    assert page.inner_text("h1") == "Check your inbox"
    assert len(live.wait_for_mail(1)) == 1
    context.close()


def _active(live: LiveSite, email: str = "fan@example.org") -> int:
    from datetime import UTC, datetime

    sub, _ = live.db.subscribers.add(email, datetime.now(UTC), status=SubscriberStatus.ACTIVE)
    return sub.id


def test_feedback_link_records_one_vote_and_undo(browser: Any, live: LiveSite) -> None:
    sid = _active(live)
    url = links.feedback_url(live.cfg, live.sub(sid), "2401.00042", 1)
    context = person(browser, viewport=PHONE)
    page = context.new_page()
    page.goto(url)
    heading(page, "Thanks")
    page.goto(url)  # a second click
    heading(page, "Thanks")
    assert [(f.paper_id, f.vote) for f in live.db.subscribers.feedback_for(sid)] == [
        ("2401.00042", 1)
    ]
    page.screenshot(path=str(live.shots / "feedback-phone.png"), full_page=True)
    page.click("text=Undo")
    assert page.inner_text("h1") == "Vote removed"
    assert live.db.subscribers.feedback_for(sid) == []
    context.close()


def test_unsubscribe_through_the_page_and_come_back(browser: Any, live: LiveSite) -> None:
    sid = _active(live)
    page = browser.new_page(viewport=PHONE)
    page.goto(links.unsubscribe_url(live.cfg, live.sub(sid)))
    assert page.inner_text("h1") == "Unsubscribe?"
    assert live.db.subscribers.get(sid).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
    page.screenshot(path=str(live.shots / "unsubscribe-phone.png"), full_page=True)
    page.click("button:has-text('Unsubscribe')")
    assert page.inner_text("h1") == "You are unsubscribed"
    assert live.db.subscribers.get(sid).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]
    page.click("button:has-text('Subscribe again')")
    assert page.inner_text("h1") == "Check your inbox"
    assert live.db.subscribers.get(sid).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]
    notice, confirmation = live.wait_for_mail(2)  # "you are unsubscribed", then the opt-in
    assert "unsubscribed" in str(notice["Subject"])
    page.goto(link_in(confirmation, "/confirm/"))
    assert page.inner_text("h1") == "Confirm your subscription"  # an automated browser: no act
    page.click("button:has-text('Yes, send me the digest')")
    assert page.inner_text("h1") == "Welcome back"
    assert live.db.subscribers.get(sid).status == SubscriberStatus.ACTIVE  # type: ignore[union-attr]
    page.close()


def test_raw_one_click_post_and_a_tampered_link(browser: Any, live: LiveSite) -> None:
    sid = _active(live)
    url = links.unsubscribe_url(live.cfg, live.sub(sid))
    r = httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.headers.get("location") is None
    assert live.db.subscribers.get(sid).status == SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]

    page = browser.new_page(viewport=PHONE)
    response = page.goto(tamper(links.manage_url(live.cfg, live.sub(sid))))
    assert response is not None and response.status == 400
    assert page.inner_text("h1") == "This link does not work"
    assert no_horizontal_overflow(page)
    page.screenshot(path=str(live.shots / "error-phone.png"), full_page=True)
    page.close()


def test_confirm_and_vote_act_for_a_person_and_not_for_link_scanners(
    browser: Any, live: LiveSite
) -> None:
    from datetime import UTC, datetime

    sub, _ = live.db.subscribers.add("new@example.org", datetime.now(UTC))
    confirm = links.confirm_url(live.cfg, sub)
    sid = _active(live)
    vote = links.feedback_url(live.cfg, live.sub(sid), "2401.00042", -1)

    def state() -> tuple[str, list[Any]]:
        return live.subscriber("new@example.org").status, live.db.subscribers.feedback_for(sid)

    # A scanner that runs no script, and one driven by browser automation that does.
    for context in (browser.new_context(java_script_enabled=False), browser.new_context()):
        page = context.new_page()
        for url, asks in ((confirm, "Confirm your subscription"), (vote, "👎 Less like this?")):
            page.goto(url)
            page.wait_for_timeout(1500)  # longer than act.js waits for a person
            assert page.inner_text("h1") == asks
        context.close()
    assert state() == (SubscriberStatus.PENDING, [])

    # A person who opened the link in a tab they have not looked at yet: nothing until they do.
    context = person(browser, viewport=PHONE)
    context.add_init_script(
        "Object.defineProperty(Document.prototype, 'visibilityState',"
        " {get: () => window.shown ? 'visible' : 'hidden'})"
    )
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(vote)
    page.wait_for_timeout(2000)
    assert state()[1] == []
    page.evaluate("window.shown = true; document.dispatchEvent(new Event('visibilitychange'))")
    heading(page, "Thanks")
    assert [(f.paper_id, f.vote) for f in live.db.subscribers.feedback_for(sid)] == [
        ("2401.00042", -1)
    ]
    page.goto(confirm)
    page.evaluate("window.shown = true; document.dispatchEvent(new Event('visibilitychange'))")
    heading(page, "You're in")
    assert state()[0] == SubscriberStatus.ACTIVE
    assert console_errors == []  # no CSP violation: act.js is a same-origin file
    context.close()

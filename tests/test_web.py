"""The web app over plain HTTP (Starlette TestClient): every route and every error path.

Real parts: the SQLite file, the Maildir outbox the configured mailer writes, the e-mails
parsed back from it, and the signed links inside them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from newsletter import links
from newsletter.config import parse_config
from newsletter.models import Interest, InterestKind, Subscriber, SubscriberStatus
from newsletter.store import Database
from newsletter.tokens import make_token
from newsletter.web.app import create_app
from tests.conftest import SECRET, make_config
from tests.web_support import csrf_tokens, link_in, old_token, outbox, path_of, tamper

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

DAY = 86_400
OUTBOX = '[delivery]\nmethod = "maildir:outbox"\n'


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Site:
    """One app on a fresh database and outbox, a browser-like client, and a DB reader."""

    def __init__(self, tmp_path: Path, extra_toml: str = "", database: str = "") -> None:
        self.cfg = make_config(tmp_path, OUTBOX + extra_toml, database or "data/newsletter.db")
        self.clock = Clock()
        self.app = create_app(self.cfg, now=self.clock)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.outbox = tmp_path / "outbox"
        self.db = Database(self.cfg.database)

    def form_token(self, path: str = "/subscribe", index: int = 0) -> str:
        return csrf_tokens(self.client.get(path).text)[index]

    def subscribe(self, email: str = "ann@example.org", **fields: Any) -> Any:
        data = {
            "csrf_token": self.form_token(),
            "email": email,
            "keywords": "KV cache, speculative decoding",
            "description": "Fast inference for large language models.",
            "categories": ["cs.CL", "cs.LG"],
            "negatives": "survey",
            "timezone": "Europe/Berlin",
            "hour": "8",
            "size": "5",
        }
        data.update(fields)
        return self.client.post("/", data=data)

    def active(self, email: str = "ann@example.org") -> int:
        sub, _ = self.db.subscribers.add(email, self.clock(), status=SubscriberStatus.ACTIVE)
        self.db.subscribers.set_interests(
            sub.id,
            [
                Interest(InterestKind.KEYWORD, "diffusion"),
                Interest(InterestKind.LIKE, "2401.00001"),
            ],
            self.clock(),
        )
        return sub.id

    def sub(self, sid: int) -> Subscriber:
        found = self.db.subscribers.get(sid)
        assert found is not None
        return found

    def token(self, purpose: str, sid: int, **extra: Any) -> str:
        """A link's token for subscriber `sid` (for an id with no row: an unknown nonce)."""
        found = self.db.subscribers.get(sid)
        return make_token(SECRET, purpose, sid, found.nonce if found else "0" * 16, **extra)

    def token_path(self, route: str, purpose: str, sid: int, **extra: Any) -> str:
        return f"/{route}/" + self.token(purpose, sid, **extra)

    def status(self, sid: int) -> str:
        sub = self.db.subscribers.get(sid)
        assert sub is not None
        return str(sub.status)


@contextmanager
def open_site(tmp_path: Path, extra_toml: str = "", database: str = "") -> Iterator[Site]:
    """A `Site`, closed (client and reader) at the end."""
    s = Site(tmp_path, extra_toml, database)
    try:
        yield s
    finally:
        s.client.close()
        s.db.close()


@pytest.fixture
def site(tmp_path: Path, database_target: str) -> Iterator[Site]:
    with open_site(tmp_path, database=database_target) as s:
        yield s


# ---------------------------------------------------------------- the form and headers


def test_home_shows_the_form_with_config_categories_and_security_headers(site: Site) -> None:
    r = site.client.get("/subscribe")
    assert r.status_code == 200
    html = r.text
    assert '<form method="post" action="/"' in html
    for cat in site.cfg.sources.arxiv_categories:
        assert f'name="categories" value="{cat}"' in html
    assert 'name="email"' in html and 'name="timezone"' in html and 'name="hour"' in html
    assert 'name="size"' in html and 'name="keywords"' in html and 'name="description"' in html
    assert '<script src="/static/tz.js" defer></script>' in html
    assert "<script>" not in html  # no inline script anywhere
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert "csrf=" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def test_static_files_robots_and_health(site: Site) -> None:
    css = site.client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "max-width" in css.text
    js = site.client.get("/static/tz.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "resolvedOptions().timeZone" in js.text
    assert site.client.get("/static/../config.py").status_code == 404
    assert site.client.get("/static/secret.txt").status_code == 404
    assert "Disallow: /unsubscribe/" in site.client.get("/robots.txt").text
    assert site.client.get("/healthz").text == "ok"
    assert site.client.get("/subscribe", follow_redirects=False).status_code == 200


def test_https_site_uses_host_cookie_and_hsts(tmp_path: Path) -> None:
    text = '[site]\nbase_url = "https://papers.example"\n' + OUTBOX
    cfg = parse_config(text, base_dir=tmp_path, env={"NEWSLETTER_SECRET_KEY": SECRET})
    client = TestClient(create_app(cfg), base_url="https://testserver")
    r = client.get("/subscribe")
    assert r.headers["strict-transport-security"].startswith("max-age=")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("__Host-csrf=") and "Secure" in cookie
    token = csrf_tokens(r.text)[0]
    r = client.post("/", data={"csrf_token": token, "email": "x"})
    assert r.status_code == 400  # the cookie came back: past CSRF, on to validation


# ---------------------------------------------------------------- subscribe and confirm


def test_subscribe_sends_one_confirmation_whose_link_activates(site: Site) -> None:
    r = site.subscribe("Ann@Example.org")
    assert r.status_code == 200 and "Check your inbox" in r.text
    sub = site.db.subscribers.get_by_email("ann@example.org")
    assert sub is not None and sub.status == SubscriberStatus.PENDING
    assert (sub.timezone, sub.delivery_hour, sub.digest_size) == ("Europe/Berlin", 8, 5)
    kinds = {(i.kind, i.value) for i in site.db.subscribers.interests_for(sub.id)}
    assert kinds == {
        (InterestKind.KEYWORD, "KV cache"),
        (InterestKind.KEYWORD, "speculative decoding"),
        (InterestKind.TEXT, "Fast inference for large language models."),
        (InterestKind.CATEGORY, "cs.CL"),
        (InterestKind.CATEGORY, "cs.LG"),
        (InterestKind.NOT_KEYWORD, "survey"),
    }
    mails = outbox(site.outbox)
    assert len(mails) == 1
    assert mails[0]["To"].addresses[0].addr_spec.lower() == "ann@example.org"
    assert "List-Unsubscribe" not in mails[0]
    confirm = path_of(link_in(mails[0], "/confirm/"))
    assert site.client.head(confirm).status_code == 200
    assert site.status(sub.id) == "pending"  # a link checker's HEAD confirms nothing
    page = site.client.post(confirm)
    assert page.status_code == 200 and "You're in" in page.text
    assert site.status(sub.id) == "active"
    assert "/manage/" in page.text and "/preview/" in page.text
    again = site.client.post(confirm)
    assert again.status_code == 200 and "already subscribed" in again.text
    assert "already subscribed" in site.client.get(confirm).text
    assert site.status(sub.id) == "active"


def test_confirm_and_vote_links_act_only_on_post(site: Site) -> None:
    """Mail scanners GET every link: the page asks with a button, the POST acts."""
    site.subscribe("ann@example.org")
    sub = site.db.subscribers.get_by_email("ann@example.org")
    assert sub is not None
    confirm = path_of(link_in(outbox(site.outbox)[0], "/confirm/"))
    page = site.client.get(confirm)
    assert page.status_code == 200 and "Confirm your subscription" in page.text
    assert f'<form method="post" action="{confirm}" data-act>' in page.text
    assert '<script src="/static/act.js" defer></script>' in page.text
    assert "<script>" not in page.text and csrf_tokens(page.text) == []
    site.client.head(confirm)
    assert site.status(sub.id) == "pending"
    fan = site.active("fan@example.org")
    vote = path_of(links.feedback_url(site.cfg, site.sub(fan), "2401.00007", 1))
    page = site.client.get(vote)
    assert page.status_code == 200 and f'<form method="post" action="{vote}" data-act>' in page.text
    site.client.head(vote)
    assert site.db.subscribers.feedback_for(fan) == []
    site.client.cookies.clear()  # a first visit from a mail client: no cookie, no CSRF token
    assert "You're in" in site.client.post(confirm).text
    assert "Thanks" in site.client.post(vote).text
    assert site.status(sub.id) == "active"
    assert [(f.paper_id, f.vote) for f in site.db.subscribers.feedback_for(fan)] == [
        ("2401.00007", 1)
    ]


def test_act_script_is_served_and_waits_for_a_person(site: Site) -> None:
    js = site.client.get("/static/act.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "navigator.webdriver" in js.text and "visibilityState" in js.text


def test_subscribing_an_existing_address_reveals_nothing_and_changes_nothing(site: Site) -> None:
    sid = site.active("bob@example.org")
    fresh = site.subscribe("carol@example.org")
    known = site.subscribe("bob@example.org", keywords="attacker topic")
    assert known.status_code == fresh.status_code == 200
    assert known.text.replace("bob@", "X@") == fresh.text.replace("carol@", "X@")
    values = {i.value for i in site.db.subscribers.interests_for(sid)}
    assert values == {"diffusion", "2401.00001"}  # untouched
    mail = [m for m in outbox(site.outbox) if "bob@" in str(m["To"])]
    assert len(mail) == 1
    page = site.client.get(path_of(link_in(mail[0], "/confirm/")))
    assert "already subscribed" in page.text and "/manage/" in page.text


def keywords_of(site: Site, sid: int) -> set[str]:
    return {
        i.value for i in site.db.subscribers.interests_for(sid) if i.kind == InterestKind.KEYWORD
    }


def test_check_inbox_page_echoes_the_typed_address_never_the_stored_one(site: Site) -> None:
    site.active("bob@example.org")
    known = site.subscribe("BOB@Example.ORG")
    fresh = site.subscribe("CAROL@Example.ORG")
    assert known.status_code == fresh.status_code == 200
    assert "BOB@Example.ORG" in known.text and "bob@example.org" not in known.text
    assert "CAROL@Example.ORG" in fresh.text and "CAROL@example.org" not in fresh.text
    assert known.text.replace("BOB", "X") == fresh.text.replace("CAROL", "X")


def test_resubmitting_a_pending_signup_waits_for_its_link_and_restarts_expiry(site: Site) -> None:
    site.subscribe("dan@example.org")
    site.clock.advance(days=5)
    site.subscribe("dan@example.org", keywords="graph neural networks", categories=[])
    sub = site.db.subscribers.get_by_email("dan@example.org")
    assert sub is not None
    assert keywords_of(site, sub.id) == {"KV cache", "speculative decoding"}  # not yet
    site.clock.advance(days=5)  # 10 days after the first, 5 after the second submission
    site.subscribe("other@example.org")  # runs the expiry sweep
    assert site.db.subscribers.get_by_email("dan@example.org") is not None
    second = [m for m in outbox(site.outbox) if "dan@" in str(m["To"])][1]
    site.client.post(path_of(link_in(second, "/confirm/")))
    assert site.status(sub.id) == "active"
    assert keywords_of(site, sub.id) == {"graph neural networks"}


def owner_who_left(site: Site) -> int:
    """An active reader with their own settings, who then unsubscribed."""
    sid = site.active("owner@example.org")
    site.db.subscribers.update(
        sid, site.clock(), timezone="Asia/Tokyo", delivery_hour=6, digest_size=3
    )
    site.client.post(site.token_path("unsubscribe", "unsubscribe", sid))
    assert site.status(sid) == "unsubscribed"
    return sid


def settings_of(site: Site, sid: int) -> tuple[Any, ...]:
    sub = site.db.subscribers.get(sid)
    assert sub is not None
    return (sub.timezone, sub.delivery_hour, sub.digest_size, keywords_of(site, sid))


def test_a_strangers_signup_for_a_former_reader_changes_nothing_stored(site: Site) -> None:
    sid = owner_who_left(site)
    before = settings_of(site, sid)
    assert before == ("Asia/Tokyo", 6, 3, {"diffusion"})
    site.client.cookies.clear()  # the stranger's own browser
    r = site.subscribe("owner@example.org", keywords="attacker topic", size="50")
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert settings_of(site, sid) == before and site.status(sid) == "unsubscribed"
    # The owner's old resubscribe link brings back the owner's settings, not the stranger's.
    resub = site.token_path("resubscribe", "unsubscribe", sid)
    landing = site.client.get(resub)
    site.client.post(resub, data={"csrf_token": csrf_tokens(landing.text)[0]})
    site.client.post(path_of(link_in(outbox(site.outbox)[-1], "/confirm/")))
    assert site.status(sid) == "active" and settings_of(site, sid) == before
    likes = [i.value for i in site.db.subscribers.interests_for(sid) if i.kind == "like"]
    assert likes == ["2401.00001"]
    # The stranger's confirmation link, clicked later, changes nothing either.
    strangers = next(m for m in outbox(site.outbox) if "Confirm" in m["Subject"])
    stale = path_of(link_in(strangers, "/confirm/"))
    assert "already subscribed" in site.client.post(stale).text
    assert settings_of(site, sid) == before


def test_a_signup_request_applies_only_through_its_own_link(site: Site) -> None:
    sid = owner_who_left(site)
    site.subscribe("owner@example.org", keywords="owner's new topic", timezone="Europe/Paris")
    site.subscribe("owner@example.org", keywords="attacker topic", timezone="UTC")
    owners, strangers = [
        path_of(link_in(m, "/confirm/")) for m in outbox(site.outbox) if "Confirm" in m["Subject"]
    ]
    assert "Confirm your subscription" in site.client.get(owners).text
    assert settings_of(site, sid)[0] == "Asia/Tokyo"  # the page asked, nothing changed
    r = site.client.post(owners)
    assert r.status_code == 200 and "Welcome back" in r.text
    assert settings_of(site, sid) == ("Europe/Paris", 8, 5, {"owner's new topic"})
    likes = [i.value for i in site.db.subscribers.interests_for(sid) if i.kind == "like"]
    assert likes == ["2401.00001"]  # liked papers stay, as on the manage page
    site.client.post(strangers)
    assert settings_of(site, sid)[0] == "Europe/Paris"


def test_invalid_address_is_refused_with_the_reason_and_nothing_is_stored(site: Site) -> None:
    r = site.subscribe("not-an-address", keywords="<script>alert(1)</script>")
    assert r.status_code == 400
    assert "not a valid e-mail address" in r.text and "@-sign" in r.text
    assert "<script>alert(1)</script>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text  # kept, escaped
    assert site.db.subscribers.list() == [] and outbox(site.outbox) == []
    r = site.subscribe("eve@example.org\r\nBcc: x@evil.test")
    assert r.status_code == 400 and "line break" in r.text


def test_an_address_the_mailer_cannot_write_is_refused_with_the_real_reason(site: Site) -> None:
    r = site.subscribe("jörg@example.com")
    assert r.status_code == 400
    assert "the part before the @ contains &#39;ö&#39;" in r.text and "SMTPUTF8" in r.text
    assert "try again in a few minutes" not in r.text
    assert site.db.subscribers.list() == [] and outbox(site.outbox) == []
    # A non-ASCII domain is fine: it is written as IDNA 2008, as the validator checked it.
    assert site.subscribe("anna@straße.example").status_code == 200
    (mail,) = outbox(site.outbox)
    assert mail["To"].addresses[0].domain == "xn--strae-oqa.example"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"hour": "24"}, "between 0 and 23"),
        ({"size": "0"}, "between 1 and 50"),
        ({"size": "ten"}, "between 1 and 50"),
        ({"timezone": "Mars/Olympus"}, "Pick a time zone"),
        ({"timezone": "../../etc/passwd"}, "Pick a time zone"),
        ({"categories": ["cs.XX"]}, "Unknown category"),
        ({"keywords": "", "description": "", "categories": []}, "at least one keyword"),
        ({"keywords": "x" * 101}, "at most 100 characters"),
        ({"description": "y" * 2001}, "at most 2000 characters"),
    ],
)
def test_invalid_preferences_are_refused_with_a_message(
    site: Site, fields: dict[str, Any], message: str
) -> None:
    r = site.subscribe("ann@example.org", **fields)
    assert r.status_code == 400 and message in r.text
    assert site.db.subscribers.list() == [] and outbox(site.outbox) == []


def test_subscribe_without_or_with_a_wrong_csrf_token_is_refused(site: Site) -> None:
    site.client.get("/subscribe")
    r = site.client.post("/", data={"email": "ann@example.org", "keywords": "x"})
    assert r.status_code == 403 and "send it again" in r.text
    r = site.client.post("/", data={"csrf_token": "forged", "email": "ann@example.org"})
    assert r.status_code == 403
    token = site.form_token()
    site.client.cookies.clear()  # a cross-site POST carries no cookie of ours
    r = site.client.post("/", data={"csrf_token": token, "email": "ann@example.org"})
    assert r.status_code == 403
    assert site.db.subscribers.list() == [] and outbox(site.outbox) == []


def test_subscribe_is_rate_limited_per_client_and_per_address(tmp_path: Path) -> None:
    site = Site(tmp_path, "[web]\nsubscribe_per_hour = 3\nconfirm_per_address_per_day = 2\n")
    for _ in range(2):
        assert site.subscribe("ann@example.org").status_code == 200
    r = site.subscribe("ann@example.org")  # the mailbox has had its two e-mails today
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert len(outbox(site.outbox)) == 2
    # Per client: 3 attempts within the hour, then 429 whatever the address.
    r = site.subscribe("b@example.org")
    assert r.status_code == 429 and "Too many" in r.text
    assert site.db.subscribers.get_by_email("b@example.org") is None
    site.clock.advance(hours=1, seconds=1)
    assert site.subscribe("b@example.org").status_code == 200
    assert site.subscribe("ann@example.org").status_code == 429  # still the same day
    site.clock.advance(hours=23)
    assert site.subscribe("ann@example.org").status_code == 200
    assert len(outbox(site.outbox)) == 4


def test_confirmation_failure_says_so_and_keeps_the_signup(tmp_path: Path) -> None:
    site = Site(tmp_path)
    (tmp_path / "outbox").write_text("a file where the Maildir should be")
    r = site.subscribe("ann@example.org")
    assert r.status_code == 503 and "could not be sent" in r.text
    assert site.db.subscribers.get_by_email("ann@example.org") is not None


def test_expired_and_tampered_confirm_links(site: Site) -> None:
    site.clock.advance(days=-8)
    site.subscribe("old@example.org")
    sub = site.db.subscribers.get_by_email("old@example.org")
    assert sub is not None
    link = path_of(link_in(outbox(site.outbox)[0], "/confirm/"))
    site.clock.advance(days=8)
    r = site.client.get(link)  # the token is fresh, but the sign-up expired
    assert r.status_code == 410 and "not confirmed in time" in r.text
    r = site.client.post(link)
    assert r.status_code == 410 and "no longer exists" in r.text
    assert site.db.subscribers.get(sub.id) is None
    r = site.client.get("/confirm/" + old_token("confirm", 1, 8 * DAY))
    assert r.status_code == 410 and "expired" in r.text
    r = site.client.get("/confirm/" + tamper(site.token("confirm", 1)))
    assert r.status_code == 400 and "not valid" in r.text


def test_pending_expiry_follows_the_config(tmp_path: Path) -> None:
    site = Site(tmp_path, "[web]\npending_expiry_days = 2\n")
    site.subscribe("ann@example.org")
    sub = site.db.subscribers.get_by_email("ann@example.org")
    assert sub is not None
    r = site.client.get("/confirm/" + old_token("confirm", sub.id, 3 * DAY, sub.nonce))
    assert r.status_code == 410
    r = site.client.post("/confirm/" + old_token("confirm", sub.id, 1 * DAY, sub.nonce))
    assert r.status_code == 200 and site.status(sub.id) == "active"


@pytest.mark.parametrize(
    ("method", "route", "purpose"),
    [
        ("GET", "confirm", "confirm"),
        ("POST", "confirm", "confirm"),
        ("GET", "unsubscribe", "unsubscribe"),
        ("POST", "unsubscribe", "unsubscribe"),
        ("GET", "resubscribe", "unsubscribe"),
        ("GET", "manage", "manage"),
        ("GET", "feedback", "feedback"),
        ("POST", "feedback", "feedback"),
        ("GET", "preview", "preview"),
    ],
)
def test_every_token_route_answers_a_tampered_or_misused_token_with_a_4xx_page(
    site: Site, method: str, route: str, purpose: str
) -> None:
    sid = site.active()
    good = site.token(purpose, sid, p="2401.00001", v=1)
    other_purpose = site.token("manage" if purpose != "manage" else "confirm", sid)
    for bad in (tamper(good), good[:-10], "x" * 3000, other_purpose):
        r = site.client.request(method, f"/{route}/{bad}")
        assert r.status_code == 400, (route, bad[:20], r.status_code)
        assert "This link does not work" in r.text
        assert r.headers["x-content-type-options"] == "nosniff"
    assert site.status(sid) == "active"


# ---------------------------------------------------------------- unsubscribe


def test_unsubscribe_get_never_unsubscribes_and_post_does_once(site: Site) -> None:
    sid = site.active()
    path = site.token_path("unsubscribe", "unsubscribe", sid)
    page = site.client.get(path)
    assert page.status_code == 200 and "Unsubscribe?" in page.text
    assert f'<form method="post" action="{path}">' in page.text
    assert csrf_tokens(page.text) == []  # the one-click endpoint takes no CSRF token
    site.client.head(path)
    assert site.status(sid) == "active"
    r = site.client.post(path, data={})
    assert r.status_code == 200 and "You are unsubscribed" in r.text
    assert site.status(sid) == "unsubscribed"
    notices = outbox(site.outbox)
    assert len(notices) == 1 and "unsubscribed" in str(notices[0]["Subject"])
    assert "/resubscribe/" in link_in(notices[0], "/resubscribe/")
    again = site.client.post(path)
    assert again.status_code == 200 and site.status(sid) == "unsubscribed"
    assert len(outbox(site.outbox)) == 1  # one notice, not one per click
    assert "You are unsubscribed" in site.client.get(path).text


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_rfc8058_one_click_post_without_cookies_unsubscribes_with_2xx(
    site: Site, encoding: str
) -> None:
    sid = site.active()
    path = site.token_path("unsubscribe", "unsubscribe", sid)
    site.client.cookies.clear()
    if encoding == "urlencoded":
        r = site.client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
    else:
        r = site.client.post(
            path, files={"List-Unsubscribe": (None, "One-Click")}, follow_redirects=False
        )
    assert 200 <= r.status_code < 300
    assert site.status(sid) == "unsubscribed"


def test_one_click_on_the_list_unsubscribe_header_of_a_real_digest(site: Site) -> None:
    from newsletter.delivery import build_message, message_id_for
    from newsletter.render.renderer import RenderedEmail

    sid = site.active()
    sub = site.db.subscribers.get(sid)
    assert sub is not None
    rendered = RenderedEmail("Papers", "<p>hi</p>", "hi", "pre")
    today = site.clock().date()
    msg = build_message(
        site.cfg, sub, rendered, message_id=message_id_for(site.cfg, sid, today), kind="digest"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https_url = str(msg["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    assert https_url.startswith(site.cfg.site.base_url + "/unsubscribe/")
    client = TestClient(site.app)  # a mailbox provider: no cookies, no CSRF
    r = client.post(path_of(https_url), data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and not r.history
    assert site.status(sid) == "unsubscribed"


def test_resubscribe_needs_csrf_and_a_fresh_confirmation(site: Site) -> None:
    site.subscribe("ann@example.org")
    sid = site.db.subscribers.get_by_email("ann@example.org").id  # type: ignore[union-attr]
    first_link = path_of(link_in(outbox(site.outbox)[0], "/confirm/"))
    site.db.subscribers.set_status(sid, SubscriberStatus.ACTIVE, site.clock())  # confirmed
    unsub = site.token_path("unsubscribe", "unsubscribe", sid)
    page = site.client.post(unsub)
    resub = unsub.replace("/unsubscribe/", "/resubscribe/")
    assert f'action="{resub}"' in page.text
    assert site.client.post(resub, data={}).status_code == 403
    assert site.status(sid) == "unsubscribed"
    landing = site.client.get(resub)
    assert landing.status_code == 200 and "Subscribe again?" in landing.text
    r = site.client.post(resub, data={"csrf_token": csrf_tokens(landing.text)[0]})
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert site.status(sid) == "unsubscribed"  # the unsubscribe token alone is no consent
    mail = outbox(site.outbox)[-1]
    assert mail["To"].addresses[0].addr_spec == "ann@example.org"
    # The link from the first sign-up, sent before the unsubscribe, no longer brings them back.
    stale = site.client.post(first_link)
    assert stale.status_code == 410 and "no longer subscribes you" in stale.text
    assert site.status(sid) == "unsubscribed"
    confirm = path_of(link_in(mail, "/confirm/"))
    assert "Confirm your subscription" in site.client.get(confirm).text
    assert site.status(sid) == "unsubscribed"
    r = site.client.post(confirm)
    assert r.status_code == 200 and "Welcome back" in r.text
    assert site.status(sid) == "active"


def test_resubscribing_a_never_confirmed_address_asks_for_confirmation(site: Site) -> None:
    site.subscribe("new@example.org")
    sub = site.db.subscribers.get_by_email("new@example.org")
    assert sub is not None
    unsub = site.token_path("unsubscribe", "unsubscribe", sub.id)
    site.client.post(unsub)
    assert site.status(sub.id) == "unsubscribed"
    resub = unsub.replace("/unsubscribe/", "/resubscribe/")
    landing = site.client.get(resub)
    r = site.client.post(resub, data={"csrf_token": csrf_tokens(landing.text)[0]})
    assert r.status_code == 200 and "Check your inbox" in r.text
    assert site.status(sub.id) == "unsubscribed"
    confirm = path_of(link_in(outbox(site.outbox)[-1], "/confirm/"))
    r = site.client.post(confirm)
    assert r.status_code == 200 and "You're in" in r.text
    assert site.status(sub.id) == "active"


def test_unsubscribe_of_a_removed_subscriber_is_still_a_2xx(site: Site) -> None:
    r = site.client.post(site.token_path("unsubscribe", "unsubscribe", 999))
    assert r.status_code == 200 and "This address gets no digests" in r.text
    r = site.client.get(site.token_path("resubscribe", "unsubscribe", 999))
    assert r.status_code == 410


# ---------------------------------------------------------------- manage


def test_manage_shows_and_saves_preferences_keeping_liked_papers(site: Site) -> None:
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    page = site.client.get(path)
    assert page.status_code == 200 and 'value="diffusion"' in page.text
    token = csrf_tokens(page.text)
    data = {
        "csrf_token": token[-1],
        "keywords": "retrieval augmented generation, RAG",
        "description": "",
        "categories": ["cs.CV"],
        "negatives": "medical",
        "timezone": "America/New_York",
        "hour": "6",
        "size": "20",
    }
    r = site.client.post(path, data=data, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == path + "?saved=1"
    saved = site.client.get(r.headers["location"])
    assert "Saved." in saved.text
    sub = site.db.subscribers.get(sid)
    assert sub is not None
    assert (sub.timezone, sub.delivery_hour, sub.digest_size) == ("America/New_York", 6, 20)
    got = {(i.kind, i.value) for i in site.db.subscribers.interests_for(sid)}
    assert got == {
        (InterestKind.KEYWORD, "retrieval augmented generation"),
        (InterestKind.KEYWORD, "RAG"),
        (InterestKind.CATEGORY, "cs.CV"),
        (InterestKind.NOT_KEYWORD, "medical"),
        (InterestKind.LIKE, "2401.00001"),
    }


def test_manage_refuses_bad_input_and_missing_csrf_without_saving(site: Site) -> None:
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    page = site.client.get(path)
    bad = {"csrf_token": csrf_tokens(page.text)[-1], "keywords": "<img src=x onerror=alert(1)>"}
    bad.update({"timezone": "Nowhere/City", "hour": "7", "size": "10"})
    r = site.client.post(path, data=bad)
    assert r.status_code == 400 and "Nothing was saved" in r.text and "Pick a time zone" in r.text
    assert "<img src=x" not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    assert {i.value for i in site.db.subscribers.interests_for(sid)} == {"diffusion", "2401.00001"}
    r = site.client.post(path, data={"keywords": "x", "timezone": "UTC", "hour": "7", "size": "9"})
    assert r.status_code == 403
    other = site.token_path("manage", "manage", site.active("zed@example.org"))
    token_for_ann = csrf_tokens(page.text)[-1]
    r = site.client.post(other, data={**bad, "csrf_token": token_for_ann, "timezone": "UTC"})
    assert r.status_code == 403  # a CSRF token is bound to its form and subscriber


def test_pause_and_resume(site: Site) -> None:
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    page = site.client.get(path)
    status_token = csrf_tokens(page.text)[0]
    r = site.client.post(path + "/pause", data={"csrf_token": status_token})
    assert r.status_code == 200 and "Resume the digest" in r.text
    assert site.status(sid) == "paused"
    assert site.client.post(path + "/resume", data={}).status_code == 403
    site.client.post(path + "/resume", data={"csrf_token": status_token})
    assert site.status(sid) == "active"


def test_manage_lists_recent_digests_with_votes(site: Site) -> None:
    from newsletter.models import Paper

    sid = site.active()
    now = site.clock()
    site.db.papers.upsert(
        [
            Paper(
                "2401.00002",
                title="Sparse <attention> tricks",
                abs_url="https://arxiv.org/abs/2401.00002",
            )
        ],
        now,
    )
    day = now.date()
    site.db.sends.claim(sid, day, "<m@x>", now)
    site.db.sends.mark_sent(sid, day, "<m@x>", ["2401.00002", "2401.99999"], 1, now)
    site.db.subscribers.record_feedback(sid, "2401.00002", 1, now)
    page = site.client.get(site.token_path("manage", "manage", sid)).text
    assert day.isoformat() in page and "Sparse &lt;attention&gt; tricks" in page
    assert "arXiv:2401.99999" in page and 'class="vote on"' in page
    assert page.count("/feedback/") == 4


def test_manage_vote_controls_carry_words_beside_the_emoji(site: Site) -> None:
    sid = site.active()
    now = site.clock()
    site.db.sends.claim(sid, now.date(), "<m@x>", now)
    site.db.sends.mark_sent(sid, now.date(), "<m@x>", ["2401.99999"], 1, now)
    page = site.client.get(site.token_path("manage", "manage", sid)).text
    doc = lxml.html.document_fromstring(page)
    votes = [a.text_content().strip() for a in doc.cssselect("a.vote")]
    assert votes == ["👍 More like this", "👎 Less like this"]


def test_manage_for_an_unsubscribed_or_removed_subscriber(site: Site) -> None:
    sid = site.active()
    site.db.subscribers.set_status(sid, SubscriberStatus.UNSUBSCRIBED, site.clock())
    page = site.client.get(site.token_path("manage", "manage", sid))
    assert "Status: <strong>unsubscribed</strong>" in page.text and "/resubscribe/" in page.text
    r = site.client.get(site.token_path("manage", "manage", 12345))
    assert r.status_code == 410 and "no longer exists" in r.text
    r = site.client.get("/manage/" + old_token("manage", sid, 400 * DAY))
    assert r.status_code == 410 and "expired" in r.text


# ---------------------------------------------------------------- feedback


def test_feedback_records_one_vote_and_undo_removes_it(site: Site) -> None:
    sid = site.active()
    up = path_of(links.feedback_url(site.cfg, site.sub(sid), "2401.00007", 1))
    first = site.client.post(up)
    assert first.status_code == 200 and "Thanks" in first.text and "Undo" in first.text
    site.client.post(up)
    votes = site.db.subscribers.feedback_for(sid)
    assert [(f.paper_id, f.vote) for f in votes] == [("2401.00007", 1)]
    undo_token = csrf_tokens(first.text)[0]
    assert site.client.post(up + "/undo", data={}).status_code == 403
    r = site.client.post(up + "/undo", data={"csrf_token": undo_token})
    assert r.status_code == 200 and "Vote removed" in r.text
    assert site.db.subscribers.feedback_for(sid) == []


def test_feedback_flip_and_stale_undo(site: Site) -> None:
    sid = site.active()
    up = path_of(links.feedback_url(site.cfg, site.sub(sid), "2401.00007", 1))
    down = path_of(links.feedback_url(site.cfg, site.sub(sid), "2401.00007", -1))
    page = site.client.post(up)
    site.client.post(down)
    assert [f.vote for f in site.db.subscribers.feedback_for(sid)] == [-1]
    site.client.post(up + "/undo", data={"csrf_token": csrf_tokens(page.text)[0]})
    assert [f.vote for f in site.db.subscribers.feedback_for(sid)] == [-1]  # the later 👎 stays
    site.client.head(up)
    site.client.get(up)
    assert [f.vote for f in site.db.subscribers.feedback_for(sid)] == [-1]  # GET records nothing


def test_feedback_token_with_bad_vote_data_is_refused(site: Site) -> None:
    sid = site.active()
    for extra in ({"p": "2401.00007", "v": 5}, {"p": "not a paper", "v": 1}, {"v": 1}):
        r = site.client.get(site.token_path("feedback", "feedback", sid, **extra))
        assert r.status_code == 400
        r = site.client.post(site.token_path("feedback", "feedback", sid, **extra))
        assert r.status_code == 400
    assert site.db.subscribers.feedback_for(sid) == []
    r = site.client.get(site.token_path("feedback", "feedback", 4242, p="2401.00007", v=1))
    assert r.status_code == 410


# ---------------------------------------------------------------- errors


def test_not_found_method_not_allowed_and_server_error_pages(site: Site) -> None:
    r = site.client.get("/nope")
    assert r.status_code == 404 and "Page not found" in r.text
    assert r.headers["content-security-policy"]
    r = site.client.put("/")
    assert r.status_code == 405 and "Not allowed here" in r.text and "allow" in r.headers
    path = site.token_path("manage", "manage", 1)
    site.db.conn.execute("ALTER TABLE subscribers RENAME TO broken")  # a damaged database
    r = site.client.get(path)
    assert r.status_code == 500 and "Something went wrong" in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert "Traceback" not in r.text


def test_oversized_body_is_refused(site: Site) -> None:
    r = site.client.post("/", content=b"a=" + b"x" * 70_000)
    assert r.status_code == 413 and r.headers["x-content-type-options"] == "nosniff"


def test_malformed_multipart_is_a_400(site: Site) -> None:
    site.form_token()
    r = site.client.post(
        "/",
        content=b'--zz\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nx',
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 400 and "could not be read" in r.text


# ---------------------------------------------------------------- preview


def test_preview_shows_todays_digest_and_records_nothing(site: Site) -> None:
    from zoneinfo import ZoneInfo

    from newsletter.web.security import PREVIEW_CSP
    from tests.render_factory import corpus, paper

    today = site.clock().astimezone(ZoneInfo(site.cfg.digest.timezone)).date()
    rows = corpus()[:8]
    site.db.papers.upsert([paper(i, r, announced=today) for i, r in enumerate(rows)], site.clock())
    sid = site.active()
    words = rows[0]["title"].split()[:3]
    site.db.subscribers.set_interests(
        sid, [Interest(InterestKind.KEYWORD, " ".join(words))], site.clock()
    )
    r = site.client.get(site.token_path("preview", "preview", sid))
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == PREVIEW_CSP
    assert "<script" not in r.text.lower()
    assert "2611.10000" in r.text  # the matching paper is in the digest
    assert site.db.sends.recently_sent(sid) == [] and site.db.sends.on(today) == []


def test_preview_of_a_first_digest_is_the_welcome_digest_that_send_sends(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web preview and `send` build a digest through one call: same template, same HTML."""
    from zoneinfo import ZoneInfo

    from itsdangerous.timed import TimestampSigner

    from newsletter import pipeline
    from tests.render_factory import corpus, paper

    # Links carry signed tokens with a timestamp: sign both renders in the same second.
    frozen = int(site.clock().timestamp())
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda _self: frozen)
    today = site.clock().astimezone(ZoneInfo(site.cfg.digest.timezone)).date()
    rows = corpus()[:8]
    site.db.papers.upsert([paper(i, r, announced=today) for i, r in enumerate(rows)], site.clock())
    sid = site.active()
    words = rows[0]["title"].split()[:3]
    site.db.subscribers.set_interests(
        sid, [Interest(InterestKind.KEYWORD, " ".join(words))], site.clock()
    )
    shown = site.client.get(site.token_path("preview", "preview", sid))
    assert shown.status_code == 200
    summary = pipeline.send_daily(pipeline.Context(site.db, site.cfg, clock=site.clock), today)
    assert summary.sent == 1
    (message,) = outbox(site.outbox)
    assert message["Subject"].startswith("Welcome to Test Digest")
    body = message.get_body(("html",))
    assert body is not None
    sent = body.get_payload(decode=True)
    # Byte for byte, once SMTP's CRLF line ends and the part's closing line break are undone.
    assert shown.content == sent.replace(b"\r\n", b"\n").removesuffix(b"\n")
    # The e-mail's "view in browser" link opens that date's digest as it was sent.
    as_sent = site.client.get(path_of(link_in(message, "/preview/")))
    assert as_sent.status_code == 200 and "as it was sent" in as_sent.text
    assert "2611.10000" in as_sent.text


def test_preview_with_nothing_to_show(site: Site) -> None:
    sid = site.active()
    r = site.client.get(site.token_path("preview", "preview", sid))
    assert r.status_code == 200 and "No digest today" in r.text
    assert "/manage/" in r.text
    assert site.client.get(site.token_path("preview", "preview", 777)).status_code == 410


def test_view_in_browser_shows_the_digest_as_sent_on_its_date(site: Site) -> None:
    """A dated preview link shows the ledger's picks for that date, not today's digest, and
    points at the newer digest once one was sent."""
    from zoneinfo import ZoneInfo

    from newsletter import pipeline
    from tests.render_factory import corpus, paper

    today = site.clock().astimezone(ZoneInfo(site.cfg.digest.timezone)).date()
    earlier = today - timedelta(days=2)
    rows = corpus()[:8]
    site.db.papers.upsert(
        [paper(i, r, announced=earlier if i < 4 else today) for i, r in enumerate(rows)],
        site.clock(),
    )
    sid = site.active()
    words = [" ".join(rows[i]["title"].split()[:3]) for i in (0, 4)]
    site.db.subscribers.set_interests(
        sid, [Interest(InterestKind.KEYWORD, w) for w in words], site.clock()
    )
    ctx = pipeline.Context(site.db, site.cfg, clock=site.clock)
    assert pipeline.send_daily(ctx, earlier).sent == 1
    sent = site.db.sends.get(sid, earlier)
    assert sent is not None and "2611.10000" in sent.paper_ids
    sub = site.db.subscribers.get(sid)
    assert sub is not None
    dated = path_of(links.preview_url(site.cfg, sub, earlier))

    page = site.client.get(dated)
    assert page.status_code == 200
    assert all(pid in page.text for pid in sent.paper_ids)
    assert "2611.10004" not in page.text  # today's paper was not in that digest
    assert "as it was sent" in page.text and "A newer digest" not in page.text

    assert pipeline.send_daily(ctx, today).sent == 1
    page = site.client.get(dated)
    assert "A newer digest exists" in page.text
    newer = path_of(links.preview_url(site.cfg, sub, today))
    assert newer in page.text.replace("&amp;", "&")
    assert "2611.10004" in site.client.get(newer).text

    missing = site.client.get(path_of(links.preview_url(site.cfg, sub, earlier - timedelta(1))))
    assert missing.status_code == 200 and "No digest was sent to you" in missing.text


def test_preview_after_a_quiet_stretch_shows_the_newest_day_with_papers(site: Site) -> None:
    """No paper in the window (the demo's data is from the past): the preview shows the newest
    day that has papers and says so, and never blames the reader's interests."""
    from zoneinfo import ZoneInfo

    from tests.render_factory import corpus, paper

    sid = site.active()
    empty = site.client.get(site.token_path("preview", "preview", sid))
    assert "No papers have been fetched yet" in empty.text and "widen" not in empty.text

    today = site.clock().astimezone(ZoneInfo(site.cfg.digest.timezone)).date()
    old = today - timedelta(days=10)
    rows = corpus()[:8]
    site.db.papers.upsert([paper(i, r, announced=old) for i, r in enumerate(rows)], site.clock())
    words = rows[0]["title"].split()[:3]
    site.db.subscribers.set_interests(
        sid, [Interest(InterestKind.KEYWORD, " ".join(words))], site.clock()
    )
    r = site.client.get(site.token_path("preview", "preview", sid))
    assert r.status_code == 200
    assert "2611.10000" in r.text and "widen" not in r.text
    assert "No new papers have arrived since" in r.text and "newest day with papers" in r.text


def test_the_form_says_what_avoided_keywords_do_and_the_welcome_gives_true_advice(
    site: Site,
) -> None:
    """Ranking leaves out papers with an avoided keyword (a hard rule), so the form says so;
    a used confirmation link cannot manage anything, so the welcome points at the digests."""
    form = site.client.get("/subscribe").text
    assert "are left out of your digest" in form and "rank lower" not in form
    site.subscribe("ann@example.org")
    confirm = path_of(link_in(outbox(site.outbox)[0], "/confirm/"))
    page = site.client.post(confirm).text
    assert "keep the confirmation" not in page
    assert "every digest ends with links to manage your preferences" in page

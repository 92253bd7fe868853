"""The outbox page: the site's Maildir read back for a browser on this machine only."""

from __future__ import annotations

import warnings
from pathlib import Path

from newsletter.web.app import create_app
from tests.conftest import make_config
from tests.test_web import Site
from tests.web_support import path_of

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient


def test_outbox_lists_what_the_site_sent_with_working_links_for_local_browsers_only(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    local = TestClient(
        site.app,
        raise_server_exceptions=False,
        client=("127.0.0.1", 50000),
        base_url="http://127.0.0.1:8000",
    )
    assert "Nothing sent yet" in local.get("/outbox").text
    assert site.subscribe("ann@example.org").status_code == 200

    page = local.get("/outbox")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "ann@example.org" in page.text
    confirm = next(
        line.split('href="')[1].split('"')[0]
        for line in page.text.splitlines()
        if 'href="' in line and "/confirm/" in line
    )
    assert confirm.startswith(site.cfg.site.base_url)
    confirm = path_of(confirm.replace("&amp;", "&"))
    assert "Confirm your subscription" in site.client.get(confirm).text
    assert "You're in" in site.client.post(confirm).text

    assert site.client.get("/outbox").status_code == 404  # not from another machine
    hostile = ("attacker.example", "127.0.0.1.attacker.example", "papers.example.org")
    malformed = ("evil.example:99999x", "evil.example:80:80", "evil example", "[", "")
    for host in (*hostile, *malformed):
        # a browser here, on a page whose domain was pointed at 127.0.0.1 (DNS rebinding)
        assert local.get("/outbox", headers={"host": host}).status_code == 404, host
    for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"):
        assert local.get("/outbox", headers={"host": host}).status_code == 200, host
    smtp = create_app(make_config(tmp_path / "smtp", ""))  # sends over SMTP: no outbox
    assert TestClient(smtp, client=("127.0.0.1", 1)).get("/outbox").status_code == 404

"""A reader's own blend of trending and relevance: saved on the manage page or with the CLI,
checked by the one preferences rule, stored in its column, and used by the ranker."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from newsletter import pipeline
from newsletter.cli import cli
from newsletter.demo import DAILY_PAPERS, DEMO_DAY, FEED
from newsletter.models import Digest, Interest, InterestKind, SubscriberStatus
from newsletter.preferences import TRENDING_MIXES, trending_weight
from newsletter.sources.arxiv_rss import parse_feed
from newsletter.sources.huggingface import parse_daily
from newsletter.store import Database
from tests.conftest import SECRET, make_config
from tests.test_web import Site, csrf_tokens, open_site


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with open_site(tmp_path) as s:
        yield s


def stored_mix(db_path: Path, sid: int) -> str:
    with sqlite3.connect(db_path) as conn:
        row = conn.execute("SELECT trending_mix FROM subscribers WHERE id = ?", [sid]).fetchone()
    return str(row[0])


def test_every_step_moves_the_weight_the_same_way_whatever_the_site_sets() -> None:
    for site_weight in (0.0, 0.25, 1.0):
        weights = [trending_weight(mix, site_weight) for mix in TRENDING_MIXES]
        assert weights == sorted(weights) and weights[0] == 0.0, site_weight
        assert weights[2] == site_weight < weights[3] < weights[4]  # more trending: always
        assert site_weight == 0 or weights[0] < weights[1] < weights[2]


def test_manage_page_offers_the_mix_in_words_and_saves_it(site: Site) -> None:
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    page = site.client.get(path)
    doc = lxml.html.document_fromstring(page.text)
    radios = doc.cssselect('input[type="radio"][name="trending"]')
    assert [r.get("value") for r in radios] == list(TRENDING_MIXES)
    assert [r.get("value") for r in radios if r.get("checked") is not None] == [""]
    labels = [r.getparent().text_content().strip() for r in radios]
    assert labels[0].startswith("Most personal") and labels[-1].startswith("Most trending")
    assert "The site's mix (default)" in labels

    form = {"keywords": "diffusion", "timezone": "UTC", "hour": "7", "size": "10"}
    token = csrf_tokens(page.text)[-1]
    r = site.client.post(
        path,
        data={**form, "csrf_token": token, "trending": "more-trending"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert stored_mix(site.cfg.database_path, sid) == "more-trending"
    again = lxml.html.document_fromstring(site.client.get(path).text)
    checked = again.cssselect('input[name="trending"][checked]')
    assert [c.get("value") for c in checked] == ["more-trending"]

    r = site.client.post(path, data={**form, "csrf_token": token, "trending": "viral"})
    assert r.status_code == 400 and "Pick how personal your digest is" in r.text
    assert stored_mix(site.cfg.database_path, sid) == "more-trending"  # nothing saved


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[storage]\ndata_dir = "data"\ndatabase = "data/newsletter.db"\n'
        '[site]\nbase_url = "http://127.0.0.1:8000"\nname = "T"\npostal_address = "1 St"\n'
        '[delivery]\nmethod = "maildir:outbox"\n',
        encoding="utf-8",
    )
    return path


def invoke(config: Path, *args: str) -> str:
    result = CliRunner().invoke(
        cli, ["--config", str(config), *args], env={"NEWSLETTER_SECRET_KEY": SECRET}
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_subscribe_sets_the_mix_checked_by_the_same_rule(config_file: Path) -> None:
    invoke(config_file, "subscribe", "a@example.org", "--interest", "x", "--confirmed")
    out = invoke(
        config_file, "subscribe", "b@example.org", "--interest", "x", "--trending", "personal"
    )
    assert "subscribed b@example.org (pending)" in out
    db = config_file.parent / "data" / "newsletter.db"
    assert stored_mix(db, 1) == "" and stored_mix(db, 2) == "personal"

    out = invoke(config_file, "subscribe", "a@example.org", "--trending", "trending")
    assert "nothing changed except the trending mix, set" in out
    assert stored_mix(db, 1) == "trending"
    listing = invoke(config_file, "subscribers")
    assert re.search(r"a@example\.org .* trending +x", listing), listing
    assert re.search(r"b@example\.org .* personal +x", listing), listing
    invoke(config_file, "subscribe", "a@example.org", "--trending", "site")
    assert stored_mix(db, 1) == ""
    assert re.search(r"a@example\.org .* site +x", invoke(config_file, "subscribers"))

    bad = CliRunner().invoke(
        cli,
        ["--config", str(config_file), "subscribe", "c@example.org", "--trending", "viral"],
        env={"NEWSLETTER_SECRET_KEY": SECRET},
    )
    assert bad.exit_code != 0 and "--trending" in bad.output
    assert "Pick how personal your digest is" in bad.output


def test_two_readers_with_the_same_interests_and_different_mixes_get_different_picks(
    tmp_path: Path,
) -> None:
    cfg = make_config(tmp_path)
    now = datetime(2026, 11, 24, 8, tzinfo=UTC)
    interests = [Interest(InterestKind.KEYWORD, k) for k in ("diffusion", "quantization")]
    with Database(cfg.database_path) as store:
        store.papers.upsert(
            [*parse_feed(FEED.read_bytes()).papers, *parse_daily(DAILY_PAPERS.read_bytes()).papers],
            now,
        )
        ids = {}
        for mix in ("personal", "trending"):
            sub, _ = store.subscribers.add(
                f"{mix}@example.org", now, status=SubscriberStatus.ACTIVE
            )
            store.subscribers.set_interests(sub.id, interests, now)
            store.subscribers.update(sub.id, now, trending_mix=mix)
            ids[mix] = sub.id
        digests = pipeline.build_digests(pipeline.Context(store, cfg), DEMO_DAY)
    by_mix = {d.subscriber.trending_mix: d for d in digests}
    personal, trending = by_mix["personal"], by_mix["trending"]

    def order(d: Digest) -> list[str]:
        return [p.paper.id for p in d.picks]

    def upvotes(d: Digest) -> int:
        return sum(p.paper.upvotes or 0 for p in d.picks[:5])

    assert order(personal) and order(trending)
    assert order(personal) != order(trending)
    assert upvotes(trending) > upvotes(personal)

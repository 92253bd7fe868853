"""No LaTeX remnant from any bundled title or abstract reaches a reader.

Every paper the project ships (the demo's sample day, every recorded payload in tests/fixtures
as its parser reads it, the evaluation corpus as the demo builder repairs it) is rendered into
real digest e-mails and listed by `newsletter papers`; what arrives holds no backslash, no math
dollar, no brace and no LaTeX name that lost its backslash. A dollar before a digit is a price
and stays.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner

from newsletter import delivery
from newsletter.cli import cli
from newsletter.data.corpus_repair import REPAIRS, repaired
from newsletter.demo import DAILY_PAPERS, DEMO_DAY, FEED
from newsletter.models import Digest, Paper, Pick
from newsletter.render.renderer import Renderer
from newsletter.sources.arxiv_api import parse_page
from newsletter.sources.arxiv_rss import parse_feed
from newsletter.sources.huggingface import parse_daily
from newsletter.store import Database
from tests.conftest import FIXTURES, SECRET, make_config
from tests.render_factory import paper, subscriber

# A backslash, a dollar that is no price, a brace, or a command name that lost its backslash.
REMNANT = re.compile(
    r"\\|\$(?!\d)|[{}]|\b(?:mathcal|mathbb|varepsilon|ldots|cdot|textbf|frac)\b|\dtimes\b"
)
NOW = datetime(2026, 11, 24, 8, tzinfo=UTC)
CORPORA = (FIXTURES / "eval" / "corpus.jsonl", FIXTURES / "corpus_sample.jsonl")


def remnants(text: str) -> list[str]:
    return [text[max(0, m.start() - 30) : m.end() + 30] for m in REMNANT.finditer(text)]


def corpus_papers() -> Iterator[Paper]:
    lines = [line for path in CORPORA for line in path.read_text(encoding="utf-8").splitlines()]
    for n, line in enumerate(lines):
        row = repaired(json.loads(line))
        yield paper(n, row, id=f"2612.{n:05d}", title=row["title"], abstract=row["abstract"])


def parsed_papers() -> Iterator[Paper]:
    yield from parse_feed(FEED.read_bytes()).papers
    yield from parse_daily(DAILY_PAPERS.read_bytes()).papers
    for path in sorted((FIXTURES / "arxiv_rss").iterdir()):
        yield from parse_feed(path.read_bytes()).papers
    for path in sorted((FIXTURES / "huggingface").glob("daily_papers_*items*.json")):
        yield from parse_daily(path.read_bytes()).papers
    for path in sorted((FIXTURES / "arxiv_api").glob("api_*[!r]_20*.xml")):
        if "error" not in path.name:
            yield from parse_page(path.read_bytes()).papers


def bundled_papers() -> list[Paper]:
    papers = [*parsed_papers(), *corpus_papers()]
    assert len(papers) > 1100  # the demo day, the fixtures and both corpora
    return papers


def test_a_price_stays_and_math_dollars_go() -> None:
    row = {"id": "p050", "title": "Prices", "abstract": "ratio (\\0.12/F1 point) vs. \\$1.59"}
    assert repaired(row)["abstract"] == "ratio (\\$0.12/F1 point) vs. \\$1.59"


def test_every_repair_in_the_table_still_finds_its_text() -> None:
    rows = {
        row["id"]: row
        for row in map(json.loads, CORPORA[0].read_text(encoding="utf-8").splitlines())
    }
    for pid in REPAIRS:
        repaired(rows[pid])  # raises when a repair no longer finds what it fixes
    with pytest.raises(ValueError, match="no longer finds"):
        repaired({"id": "p050", "title": "t", "abstract": "already clean"})


def _received(renderer: Renderer, papers: list[Paper]) -> tuple[str, str]:
    """The text and HTML parts (as text a reader sees) of the digest e-mail for `papers`."""
    cfg = renderer.cfg
    sub = subscriber()
    digest = Digest(
        subscriber=sub,
        date=date(2026, 11, 24),
        picks=tuple(Pick(p, 1.0, reason="matches: KV cache") for p in papers),
        trending=(),
    )
    rendered = renderer.digest(digest)
    assert rendered.dropped == 0
    raw = delivery.render_bytes(
        cfg, sub, rendered, message_id="<t@example.org>", digest_date=digest.date
    )
    msg = email.message_from_bytes(raw, policy=email.policy.SMTP)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    body = lxml.html.document_fromstring(html).find("body")
    assert body is not None
    return text, body.text_content()


def test_no_bundled_title_or_abstract_leaves_latex_in_the_email(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[digest]\nexcerpt_chars = 5000\n")
    renderer = Renderer(cfg, max_html_bytes=10_000_000)
    papers = bundled_papers()
    found: list[str] = []
    for start in range(0, len(papers), 25):
        text, html_text = _received(renderer, papers[start : start + 25])
        found += [f"text: {r!r}" for r in remnants(text)]
        found += [f"html: {r!r}" for r in remnants(html_text)]
    assert not found, "\n".join(found[:20])


def test_newsletter_papers_lists_titles_without_latex(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[storage]\ndata_dir = "data"\ndatabase = "data/newsletter.db"\n')
    cfg = make_config(tmp_path)
    cfg.database_path.parent.mkdir(parents=True, exist_ok=True)
    with Database(cfg.database_path) as store:
        store.papers.upsert(bundled_papers(), NOW)
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "papers", "--limit", "5000"],
        env={"NEWSLETTER_SECRET_KEY": SECRET},
    )
    assert result.exit_code == 0, result.output
    assert "PixArt-α: Fast Training" in result.output
    assert not remnants(result.output), remnants(result.output)[:10]


def test_the_public_site_shows_no_latex_from_the_demo_day(tmp_path: Path) -> None:
    """Every day page of the demo day (cards with full abstracts) and the page of each paper
    whose text the builder repaired, as the site renders them."""
    from newsletter.web.app import create_app
    from tests.web_support import TestClient

    cfg = make_config(tmp_path)
    feed = parse_feed(FEED.read_bytes()).papers
    with Database(cfg.database_path) as store:
        store.papers.upsert([*feed, *parse_daily(DAILY_PAPERS.read_bytes()).papers], NOW)
    client = TestClient(create_app(cfg))
    found: list[str] = []
    pages = -(-len(feed) // 25)
    for n in range(1, pages + 1):
        r = client.get(f"/papers/{DEMO_DAY.isoformat()}", params={"page": n})
        assert r.status_code == 200, n
        found += remnants(_page_text(r.text))
    corpus = {json.loads(line)["title"] for line in CORPORA[0].read_text().splitlines()}
    repaired_titles = {
        json.loads(line)["title"]
        for line in CORPORA[0].read_text().splitlines()
        if json.loads(line)["id"] in REPAIRS
    }
    assert repaired_titles <= corpus
    for p in feed:
        if p.title in repaired_titles:
            r = client.get(f"/paper/{p.id}")
            assert r.status_code == 200
            found += remnants(_page_text(r.text))
    assert not found, found[:10]


def _page_text(html: str) -> str:
    body = lxml.html.document_fromstring(html).find("body")
    assert body is not None
    for code in [*body.iter("script", "style"), *body.cssselect("pre.bibtex")]:
        code.drop_tree()  # BibTeX is meant to have braces
    return body.text_content()

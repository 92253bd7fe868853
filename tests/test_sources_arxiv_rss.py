"""The rss.arxiv.org parser against recorded feeds, field by field."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from datetime import date

import pytest

from newsletter.errors import FeedError
from newsletter.sources import arxiv_rdf, arxiv_rss, text
from newsletter.sources.text import clean_text, split_authors, tex_to_unicode
from tests.conftest import fixture_bytes
from tests.hostile_xml import billion_laughs, expansion_attack, measured

QUANT_PH = "arxiv_rss/rss_quant-ph_2025-04-28.xml"
ATOM = "arxiv_rss/atom_cs.AI_2025-08-20.xml"
EMPTY = "arxiv_rss/rss_cs_empty_weekend_2025-04-27.xml"


def test_feed_url_joins_categories_in_one_request() -> None:
    url = arxiv_rss.feed_url("https://rss.arxiv.org/rss/", ["cs.LG", "cs.CL", "cs.CV"])
    assert url == "https://rss.arxiv.org/rss/cs.LG+cs.CL+cs.CV"


def test_rss_keeps_new_and_cross_and_skips_replacements() -> None:
    parsed = arxiv_rss.parse_feed(fixture_bytes(QUANT_PH))
    assert [p.id for p in parsed.papers] == [
        "2504.17830",
        "2504.17837",
        "2504.18166",
        "2504.16299",
        "2504.18342",
    ]
    assert [p.announce_type for p in parsed.papers] == ["new"] * 3 + ["cross"] * 2
    assert parsed.skipped == 5  # 3 replace + 2 replace-cross
    assert parsed.day == date(2025, 4, 28)


def test_rss_without_cross_lists_keeps_only_new() -> None:
    parsed = arxiv_rss.parse_feed(fixture_bytes(QUANT_PH), include_cross=False)
    assert [p.announce_type for p in parsed.papers] == ["new"] * 3
    assert parsed.skipped == 7


def test_rss_item_fields() -> None:
    papers = {p.id: p for p in arxiv_rss.parse_feed(fixture_bytes(QUANT_PH)).papers}
    p = papers["2504.17837"]
    assert p.title == (
        "Statistical noise enhances quantumness benefits in spin-network quantum reservoir "
        "computing"
    )
    assert p.abstract.startswith("Quantum reservoir computing offers a promising approach")
    assert p.abstract.endswith("implementation within existing machines.")
    assert "Announce Type" not in p.abstract and not p.abstract.startswith("arXiv:")
    assert p.authors == ("Youssef Kora", "Christoph Simon")
    assert p.categories == ("quant-ph", "physics.comp-ph")
    assert p.primary_category == "quant-ph"
    assert p.version == 1
    assert p.announced == date(2025, 4, 28)
    assert p.abs_url == "https://arxiv.org/abs/2504.17837"
    assert p.pdf_url == "https://arxiv.org/pdf/2504.17837"
    assert p.sources == ("arxiv_rss",)
    assert p.journal_ref == "" and p.doi == ""
    assert p.upvotes is None and p.hf_date is None

    texture = papers["2504.18166"]
    assert texture.journal_ref == "Phys. Rev. A 111, 042427 (2025)"
    assert texture.authors == ("Yiding Wang", "Hui Liu", "Tinggui Zhang")

    cross = papers["2504.16299"]
    assert cross.categories == ("cs.IT", "math.IT", "quant-ph")  # primary first
    assert cross.primary_category == "cs.IT"
    assert len(cross.authors) == 5

    photo = papers["2504.18342"]
    assert photo.doi == "10.1016/j.ppnp.2025.104174"
    assert photo.journal_ref == "Progress in Particle and Nuclear Physics (2025)"
    # TeX maths in abstracts is kept as written
    assert r"\(T_w = i\hbar" in papers["2504.17830"].abstract


def test_atom_variant() -> None:
    parsed = arxiv_rss.parse_feed(fixture_bytes(ATOM))
    assert parsed.day == date(2025, 8, 20)
    assert [(p.id, p.announce_type) for p in parsed.papers] == [
        ("2508.13167", "new"),
        ("2508.13177", "new"),
        ("2508.00875", "cross"),
        ("2508.13303", "cross"),
        ("2508.13426", "cross"),
    ]
    first = parsed.papers[0]
    assert first.title.startswith("Chain-of-Agents: End-to-End Agent Foundation Models")
    assert first.categories == ("cs.AI", "cs.CL")
    assert len(first.authors) == 30 and first.authors[-1] == "Wangchunshu Zhou"
    assert first.announced == date(2025, 8, 20)
    assert first.abstract.startswith("Recent advances in large language models")
    second = parsed.papers[1]
    # TeX accents in dc:creator become Unicode
    assert second.authors[:3] == ("Nikola Pižurica", "Nikola Milović", "Igor Jovančević")
    gpai = parsed.papers[2]
    assert gpai.doi == "10.7249/PEA3971-1"
    assert gpai.categories == ("cs.CY", "cs.AI")


def test_empty_weekend_feed_is_a_normal_day() -> None:
    parsed = arxiv_rss.parse_feed(fixture_bytes(EMPTY))
    assert parsed.papers == [] and parsed.skipped == 0
    assert parsed.day == date(2025, 4, 27)
    assert arxiv_rss.no_papers_message(parsed.day) == (
        "arXiv announced no new papers for 2025-04-27"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "sent an HTML page"),
        (b"<?xml version='1.0'?><opml><body/></opml>", "not an RSS or Atom feed"),
        (b"<!DOCTYPE html><html><body>Oops</body></html>", "HTML page"),
        (b"", "bad XML"),
        (None, "bad XML"),  # truncated mid-item
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><rss>&a;</rss>', "DTD"),
    ],
)
def test_malformed_bodies_raise_feed_error_naming_the_url(
    body: bytes | None, expected: str
) -> None:
    content = fixture_bytes(QUANT_PH)[:5000] if body is None else body
    with pytest.raises(FeedError) as err:
        arxiv_rss.parse_feed(content, url="https://rss.example/rss/cs.LG")
    assert "https://rss.example/rss/cs.LG" in str(err.value)
    assert expected in str(err.value)


LEGACY = "arxiv_rss/legacy_rss1_hep-ex_2018-05-23.rdf"
HOSTILE = [
    (QUANT_PH, b"Abstract:", expansion_attack),
    (QUANT_PH, b"Abstract:", billion_laughs),
    (ATOM, b"Abstract:", expansion_attack),
    (ATOM, b"Abstract:", billion_laughs),
    (LEGACY, b"In 2015 the", expansion_attack),
]


@pytest.mark.parametrize(("name", "marker", "attack"), HOSTILE)
def test_entity_declarations_behind_a_4mb_comment_are_refused_unexpanded(
    name: str, marker: bytes, attack: Callable[[bytes, bytes], bytes]
) -> None:
    hostile = attack(fixture_bytes(name), marker)
    error, seconds, peak = measured(lambda: arxiv_rss.parse_feed(hostile, url="https://rss.x/"))
    assert isinstance(error, FeedError), error
    assert "https://rss.x/ sent a document with a DTD or entity declaration" in str(error)
    # Refused while reading the prolog: nothing near the 200 MB (or 3 GB) expansion is built.
    assert seconds < 1.0
    assert peak < 50_000_000  # the 4 MB input held a few times over, not 200 MB


def test_the_legacy_parser_refuses_entities_before_feedparser_expands_them() -> None:
    hostile = expansion_attack(fixture_bytes(LEGACY), b"In 2015 the", copies=1000)
    with pytest.raises(FeedError, match="DTD or entity declaration"):
        arxiv_rdf.parse_legacy(hostile, day=None, url="https://mirror.x/rdf")


def test_c1_controls_and_overlong_fields_are_cleaned_at_parse_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feed = fixture_bytes(QUANT_PH).decode()
    title = "Statistical noise enhances quantumness benefits in spin-network quantum reservoir"
    hostile = "&#x9d;8;;https://evil.example/&#x9c;Statistical noise&#x9b;2J &#x85;" + "x" * 2000
    feed = feed.replace(title, hostile, 1).replace(
        "<category>quant-ph</category>", "<category>quant-ph&#x9b;1m</category>", 1
    )
    with caplog.at_level(logging.WARNING):
        papers = arxiv_rss.parse_feed(feed.encode(), url="https://rss.x/").papers
    p = next(p for p in papers if p.title.startswith("Statistical noise"))
    assert p.title.startswith("Statistical noise x") and len(p.title) == text.MAX_TITLE_CHARS
    assert not any(unicodedata.category(ch) == "Cc" for ch in p.title)  # C0, DEL, C1
    assert "quant-ph" in {c for paper in papers for c in paper.categories}
    assert not any("\x9b" in c for paper in papers for c in paper.categories)
    assert (
        f"https://rss.x/: paper {p.id}: title cut from 2028 to 1000 characters" in caplog.messages
    )


def test_legacy_rdf_format_is_read_with_feedparser() -> None:
    legacy = fixture_bytes("arxiv_rss/legacy_rss1_hep-ex_2018-05-23.rdf")
    parsed = arxiv_rss.parse_feed(legacy)
    assert parsed.day == date(2018, 5, 23)
    new, cross = parsed.papers
    assert (new.id, new.version, new.announce_type) == ("1805.08875", 1, "new")
    assert new.title.startswith("Measurement of Transverse Single Spin Asymmetries in $\\pi^0$")
    assert new.title.endswith("Collisions at STAR")  # the "(arXiv:... [hep-ex])" tail is gone
    assert new.authors == ("Christopher Dilks",)  # the <a href> markup is gone
    assert new.categories == ("hep-ex",) and new.announced == date(2018, 5, 23)
    assert new.abstract.startswith("In 2015 the first collisions between polarized protons")
    assert "range of $2.6<\\eta<4$" in new.abstract and "<p>" not in new.abstract
    assert (cross.id, cross.announce_type) == ("1805.09166", "cross")
    assert parsed.skipped == 1  # the third item is an update
    only_new = arxiv_rss.parse_feed(legacy, include_cross=False)
    assert [p.id for p in only_new.papers] == ["1805.08875"]


def test_abstract_text_like_think_tags_is_kept() -> None:
    feed = (
        fixture_bytes(QUANT_PH)
        .decode()
        .replace("We introduce a self-adjoint", "Models emit &lt;think&gt; tokens &amp; a &lt; b.")
    )
    p = arxiv_rss.parse_feed(feed.encode()).papers[0]
    assert p.abstract.startswith("Models emit <think> tokens & a < b.")


@pytest.mark.parametrize(
    ("creator", "names"),
    [
        ("Youssef Kora, Christoph Simon", ("Youssef Kora", "Christoph Simon")),
        (
            "A. One (MIT, Cambridge, MA), B. Two and C. Three",
            ("A. One", "B. Two", "C. Three"),
        ),
        (
            "Ann Lee (Dept. of CS (AI Lab), Univ. X, Y), Bo Chen, and Cy Diaz",
            ("Ann Lee", "Bo Chen", "Cy Diaz"),
        ),
        ("Alexander Andrews and Sandra Anderson", ("Alexander Andrews", "Sandra Anderson")),
        ("The ATLAS Collaboration", ("The ATLAS Collaboration",)),
        ("Klaus M{\\o}lmer, Fran\\c{c}ois Chollet", ("Klaus Mølmer", "François Chollet")),
        ("", ()),
    ],
)
def test_split_authors(creator: str, names: tuple[str, ...]) -> None:
    assert split_authors(creator) == names


def test_tex_accents() -> None:
    assert tex_to_unicode(r"G\"unter {\"O}zg\"ur Erd\H{o}s \'{\i}") == "Günter Özgür Erdős í"
    assert tex_to_unicode("plain name") == "plain name"


def test_clean_text_joins_wrapped_lines_and_keeps_paragraphs() -> None:
    assert (
        clean_text("  one\ntwo  three\n  Second para\nwraps") == "one two three\nSecond para wraps"
    )

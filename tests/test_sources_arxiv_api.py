"""The arXiv API parser (both response formats) and its paging, against recorded responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
import pytest

from newsletter.errors import FeedError
from newsletter.sources import arxiv_api
from newsletter.sources.http import HttpClient
from tests.conftest import fixture_bytes
from tests.hostile_xml import billion_laughs, expansion_attack, measured

PAGE0 = "arxiv_api/api_search_all-testing_start0_max10_TRIMMED_2026-04.xml"
PAGE10 = "arxiv_api/api_search_all-testing_start10_max10_TRIMMED_2026-04.xml"
LEGACY = "arxiv_api/api_legacy_format_2016_search_au-del_maestro_AND_ti-checkerboard.xml"
ERROR = "arxiv_api/api_error_http400_incorrect_id_2026-04.xml"


def test_current_format_page_fields() -> None:
    page = arxiv_api.parse_page(fixture_bytes(PAGE0))
    assert page.total == 214881 and page.start == 0
    assert [p.id for p in page.papers] == ["2202.12139", "2405.13786", "2005.14124"]
    p = page.papers[0]
    assert p.title == (
        "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    )
    assert p.abstract.startswith("Deep Learning (DL) has revolutionized")
    assert p.abstract.endswith("discuss its results.")
    assert p.authors == ("Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker")
    assert p.categories == ("cs.SE", "cs.LG")
    assert p.version == 1
    assert p.published == datetime(2022, 2, 24, 15, 5, 19, tzinfo=UTC)
    assert p.doi == "10.1109/ICSTW55395.2022.00035"
    assert p.journal_ref.startswith("Artificial Intelligence in Software Testing @ 2022 IEEE")
    assert p.abs_url == "https://arxiv.org/abs/2202.12139"
    assert p.pdf_url == "https://arxiv.org/pdf/2202.12139"
    assert p.sources == ("arxiv_api",)
    assert p.announce_type == ""  # the API does not say; the feed's value wins later
    # Thu 24 Feb 2022 10:05 US Eastern: before the 14:00 cut-off, so the Friday feed
    assert p.announced == date(2022, 2, 25)
    assert page.papers[1].authors[2] == "José Raúl Romero"
    fuzz = page.papers[2]
    assert fuzz.version == 2 and fuzz.categories == ("cs.SE", "cs.CR", "cs.LG")


def test_second_page_and_primary_category_first() -> None:
    page = arxiv_api.parse_page(fixture_bytes(PAGE10))
    assert page.start == 10 and page.total == 214881
    p = page.papers[0]
    assert p.id == "2403.16981" and p.version == 2
    assert p.categories == ("math.ST", "cs.IT", "stat.ML")
    assert p.journal_ref == "" and p.doi == ""
    assert page.papers[1].authors == ("Itsik Bergel",)


def test_legacy_format_is_read_too() -> None:
    page = arxiv_api.parse_page(fixture_bytes(LEGACY))
    assert page.total == 1
    (p,) = page.papers
    assert p.id == "cond-mat/0603029" and p.version == 1
    # hard-wrapped title and abstract become one line each
    assert p.title == (
        "From stripe to checkerboard order on the square lattice in the presence of quenched "
        "disorder"
    )
    assert "\n" not in p.abstract
    assert p.abstract.startswith("We discuss the effects of quenched disorder on a model")
    assert "charge density wave (CDW) ordering" in p.abstract
    assert p.authors == ("Adrian Del Maestro", "Bernd Rosenow", "Subir Sachdev")
    assert p.categories == ("cond-mat.str-el", "cond-mat.supr-con")
    assert p.doi == "10.1103/PhysRevB.74.024520"
    assert p.journal_ref == "Phys. Rev. B 74, 024520 (2006)"
    assert p.published == datetime(2006, 3, 2, 2, 22, 45, tzinfo=UTC)


def test_old_style_id_and_minimal_entry() -> None:
    (old,) = arxiv_api.parse_page(
        fixture_bytes("arxiv_api/api_id_list_astro-ph_0601001_2026-05.xml")
    ).papers
    assert old.id == "astro-ph/0601001"
    assert old.authors == ("Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski")
    assert old.journal_ref == "ActaAstron.56:1-50,2006"
    assert "Gould & Morgan (2003)" in old.abstract and "V_max<17.5" in old.abstract
    (zero,) = arxiv_api.parse_page(
        fixture_bytes("arxiv_api/api_id_list_2104.12255v1_2026-04.xml")
    ).papers
    assert zero.id == "2104.12255" and zero.title == "0"
    assert zero.categories == ("cs.CR",)


def test_empty_result() -> None:
    page = arxiv_api.parse_page(fixture_bytes("arxiv_api/api_empty_result_2026-04.xml"))
    assert page.papers == [] and page.total == 0


@pytest.mark.parametrize("attack", [expansion_attack, billion_laughs])
def test_entity_declarations_behind_a_4mb_comment_are_refused_unexpanded(
    attack: Callable[[bytes, bytes], bytes],
) -> None:
    hostile = attack(fixture_bytes(PAGE0), b"<summary>")
    error, seconds, peak = measured(lambda: arxiv_api.parse_page(hostile, url="https://api.x/q"))
    assert isinstance(error, FeedError), error
    assert "https://api.x/q sent a document with a DTD or entity declaration" in str(error)
    assert seconds < 1.0 and peak < 50_000_000


def test_error_entry_becomes_a_clear_message() -> None:
    with pytest.raises(
        FeedError, match="the arXiv API refused the query: incorrect id format for abc"
    ):
        arxiv_api.parse_page(fixture_bytes(ERROR))


@pytest.mark.parametrize(
    ("submitted", "announced"),
    [
        (datetime(2025, 4, 24, 14, 0, tzinfo=UTC), date(2025, 4, 25)),  # Thu 10:00 ET -> Fri
        (datetime(2025, 4, 24, 19, 0, tzinfo=UTC), date(2025, 4, 28)),  # Thu 15:00 ET -> Mon
        (datetime(2025, 4, 25, 13, 0, tzinfo=UTC), date(2025, 4, 28)),  # Fri 09:00 ET -> Mon
        (datetime(2025, 4, 26, 12, 0, tzinfo=UTC), date(2025, 4, 29)),  # Saturday -> Tue
        (datetime(2025, 4, 28, 17, 59, tzinfo=UTC), date(2025, 4, 29)),  # Mon 13:59 ET -> Tue
        (datetime(2025, 4, 28, 18, 1, tzinfo=UTC), date(2025, 4, 30)),  # Mon 14:01 ET -> Wed
    ],
)
def test_estimated_announcement(submitted: datetime, announced: date) -> None:
    assert arxiv_api.estimated_announcement(submitted) == announced


def test_search_params() -> None:
    params = arxiv_api.search_params(["cs.LG", "cs.CL"], date(2025, 4, 21), date(2025, 4, 27))
    assert params["search_query"] == (
        "(cat:cs.LG OR cat:cs.CL) AND submittedDate:[202504210000 TO 202504272359]"
    )
    assert params["sortBy"] == "submittedDate"


def test_paging_with_start_and_politeness_delay() -> None:
    seen: list[httpx.URL] = []
    bodies = {"0": fixture_bytes(PAGE0), "3": fixture_bytes(PAGE10)}
    empty = fixture_bytes("arxiv_api/api_empty_result_2026-04.xml")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, content=bodies.get(request.url.params["start"], empty))

    clock = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    client = HttpClient(
        agent="t", transport=httpx.MockTransport(handler), sleep=sleep, clock=lambda: clock[0]
    )
    pages = list(
        arxiv_api.fetch_search(
            client,
            "https://export.arxiv.org/api/query",
            {"search_query": "all:testing"},
            delay=3.0,
            page_size=3,
        )
    )
    # start advances by what arrived; a short page is not the end, an empty one is
    assert [u.params["start"] for u in seen] == ["0", "3", "5"]
    assert [u.params["max_results"] for u in seen] == ["3", "3", "3"]
    assert seen[0].params["search_query"] == "all:testing"
    assert [len(p.papers) for p in pages] == [3, 2, 0]
    assert slept == [3.0, 3.0]  # 3 s between requests


def test_an_empty_page_before_the_end_is_asked_once_more() -> None:
    empty = fixture_bytes("arxiv_api/api_empty_result_2026-04.xml")
    hiccup = empty.replace(b"totalResults>0<", b"totalResults>214881<")
    answers = {"0": [fixture_bytes(PAGE0)], "3": [hiccup, fixture_bytes(PAGE10)], "5": [empty]}
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        start = request.url.params["start"]
        seen.append(start)
        return httpx.Response(200, content=answers[start].pop(0))

    client = HttpClient(agent="t", transport=httpx.MockTransport(handler), sleep=lambda _s: None)
    pages = list(
        arxiv_api.fetch_search(client, "https://x.example/api", {"search_query": "q"}, page_size=3)
    )
    assert seen == ["0", "3", "3", "5"]
    assert [len(p.papers) for p in pages] == [3, 2, 0]


def test_paging_stops_at_total_results() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["start"])
        return httpx.Response(200, content=fixture_bytes(LEGACY))  # totalResults 1

    client = HttpClient(agent="t", transport=httpx.MockTransport(handler), sleep=lambda _s: None)
    pages = list(arxiv_api.fetch_search(client, "https://x.example/api", {"search_query": "q"}))
    assert seen == ["0"] and len(pages) == 1


def test_http_400_error_entry_raises_feed_error() -> None:
    transport = httpx.MockTransport(lambda _r: httpx.Response(400, content=fixture_bytes(ERROR)))
    client = HttpClient(agent="t", transport=transport, sleep=lambda _s: None)
    with pytest.raises(FeedError, match="incorrect id format for abc"):
        list(arxiv_api.fetch_ids(client, "https://export.arxiv.org/api/query", ["abc"]))

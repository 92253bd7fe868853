"""The manage page's author follows and library upload in a real headless Chromium, against a
real uvicorn server, with the arXiv API answered by a local HTTP server from a recorded body
and the result read back from the SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter import links
from newsletter.bench.fetch import serve
from newsletter.config import Config
from newsletter.models import InterestKind, SubscriberStatus
from newsletter.store import Database
from tests.conftest import FIXTURES, fixture_bytes, free_port, make_config
from tests.interest_support import DAY_PAPERS, NOW
from tests.web_support import app_in_thread


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[str, Config, Database]]:
    answer = fixture_bytes("arxiv_api/api_id_list_2104.12255v1_2026-04.xml")
    with serve({"/api/query": answer}) as api:
        port = free_port()
        cfg = make_config(
            tmp_path,
            f'[sources]\narxiv_api_url = "{api}/api/query"\narxiv_api_delay_seconds = 0\n'
            '[delivery]\nmethod = "maildir:outbox"\n',
        )
        db = Database(cfg.database_path)
        try:
            with app_in_thread(cfg, port) as base:
                yield base, cfg, db
        finally:
            db.close()


def test_follow_authors_and_import_a_library_in_chromium(
    browser: Any, live: tuple[str, Config, Database]
) -> None:
    base, cfg, db = live
    db.papers.upsert(DAY_PAPERS, NOW)
    sub, _ = db.subscribers.add("ann@example.org", NOW, status=SubscriberStatus.ACTIVE)
    manage = links.manage_url(cfg, sub).replace(cfg.site.base_url, base)
    page = browser.new_page()
    page.goto(manage)
    page.fill("#keywords", "world models")
    page.fill("#authors", "Yann LeCun\nLeCun, Y.")
    page.click("text=Save preferences")
    assert "Saved." in page.inner_text(".notice")
    assert page.input_value("#authors") == "Yann LeCun\nLeCun, Y."
    page.set_input_files("#library", str(FIXTURES / "library" / "zotero_export.bib"))
    page.click("text=Import liked papers")
    notice = page.locator(".import .notice").inner_text()
    assert notice == (
        "Imported: 7 entries (BibTeX): 4 arXiv papers liked (1 fetched), "
        "1 not found on arXiv, 2 without an arXiv ID."
    )
    assert "without an arXiv ID: Protein structure from sequence" in page.inner_text(".import")
    page.set_input_files(
        "#library", {"name": "x.ris", "mimeType": "text/plain", "buffer": b"TY  - JOUR\n"}
    )
    page.click("text=Import liked papers")
    assert "Nothing was imported: line 1: this RIS record has no" in page.inner_text(
        "#library-error"
    )
    kinds = {(i.kind, i.value) for i in db.subscribers.interests_for(sub.id)}
    assert {v for k, v in kinds if k == InterestKind.LIKE} == {
        "1706.03762",
        "2005.14165",
        "1810.04805",
        "2104.12255",
    }
    assert {v for k, v in kinds if k == InterestKind.AUTHOR} == {"Yann LeCun", "LeCun, Y."}
    page.close()

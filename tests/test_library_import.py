"""Importing a reader's library as liked papers: the three export formats (hand-written in
each tool's export shape, see fixtures/SOURCES.md), hostile files, `newsletter import-likes`
and the manage page's upload, with the arXiv API served by a real local HTTP server from a
recorded answer and the likes read back from the SQLite file."""

from __future__ import annotations

import http.server
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter.bench.fetch import serve
from newsletter.errors import LibraryError
from newsletter.imports import import_likes
from newsletter.models import Interest, InterestKind
from newsletter.sources.library import MAX_LIBRARY_BYTES, parse_library
from newsletter.store import Database
from tests.conftest import FIXTURES, SMTPSink, fixture_bytes
from tests.interest_support import (
    DAY_PAPERS,
    NOW,
    add_reader,
    invoke,
    paper,
    store_of,
    texts_by_recipient,
    unwrap,
    write_config,
)
from tests.test_web import Site, open_site
from tests.web_support import csrf_tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

LIBRARY = FIXTURES / "library"
API_ANSWER = fixture_bytes("arxiv_api/api_id_list_2104.12255v1_2026-04.xml")


def ids(name: str) -> list[str | None]:
    return [e.arxiv_id for e in parse_library((LIBRARY / name).read_bytes()).entries]


def test_each_export_format_yields_its_arxiv_ids() -> None:
    assert ids("zotero_export.bib") == [
        "1706.03762",  # url, arXiv DOI and note
        "2005.14165",  # eprint + archivePrefix
        "1810.04805",  # journal = {arXiv preprint arXiv:...}
        None,  # a Nature paper
        "2301.99999",  # an arxiv.org/pdf URL with a version
        None,  # a bioRxiv eprint is not an arXiv ID
        "2104.12255",
    ]
    assert ids("zotero_export.ris") == ["1706.03762", "2005.14165", None]
    assert ids("zotero_export.json") == ["1706.03762", "1810.04805", None]
    lib = parse_library((LIBRARY / "zotero_export.bib").read_bytes())
    assert (
        lib.format == "BibTeX" and lib.entries[1].label == "Language Models are Few-Shot Learners"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"@article{a,\n  title = {Open\n", "line 1: the @article entry is not closed"),
        (b"@article{a, title = {T}}\n\n@misc{b,\n title {x}}", "line 4: entry b: expected"),
        (b"@misc{, title = {T}}", "has no citation key"),
        (b"TY  - JOUR\r\nTI  - T\r\n", "line 1: this RIS record has no 'ER  -' line"),
        (b"TY  - JOUR\nTI  - T\nTY  - JOUR\nER  - \n", "line 3: a new record starts"),
        (b'[{"title": "a"},\n {"title": }]', "line 2, column 12: not valid JSON"),
        (b'[{"title": "a"}, 7]', "entry 2: not a CSL-JSON item"),
        (b"just some notes\nabout papers", "not a BibTeX (.bib), RIS (.ris) or CSL-JSON"),
        (b"@misc{a, title = {caf\xe9}}", "line 1: the file is not UTF-8 text"),
        (b"@misc{a," + b" " * MAX_LIBRARY_BYTES + b"}", "larger than 2 MB"),
    ],
)
def test_a_bad_file_is_refused_naming_where(data: bytes, message: str) -> None:
    with pytest.raises(LibraryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_library(data)


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def api() -> Iterator[str]:
    with serve({"/api/query": API_ANSWER}) as base:
        yield base


@pytest.fixture
def config(tmp_path: Path, api: str) -> Path:
    extra = f'[sources]\narxiv_api_url = "{api}/api/query"\narxiv_api_delay_seconds = 0\n'
    path = write_config(tmp_path, 25, extra)
    with store_of(path) as store:
        store.papers.upsert(DAY_PAPERS, NOW)
        store.subscribers.add("ann@example.org", NOW)
    return path


def likes(store: Database, address: str = "ann@example.org") -> list[str]:
    sub = store.subscribers.get_by_email(address)
    assert sub is not None
    return sorted(
        i.value for i in store.subscribers.interests_for(sub.id) if i.kind == InterestKind.LIKE
    )


def test_import_likes_from_the_cli(config: Path) -> None:
    result = invoke(config, "import-likes", "ann@example.org", str(LIBRARY / "zotero_export.bib"))
    assert result.exit_code == 0, result.output
    assert (
        "ann@example.org: 7 entries (BibTeX): 4 arXiv papers liked (1 fetched), "
        "1 not found on arXiv, 2 without an arXiv ID"
    ) in result.output
    assert "not found on arXiv: 2301.99999" in result.output
    assert (
        "without an arXiv ID: Protein structure from sequence; A preprint on another server"
    ) in result.output
    with store_of(config) as store:
        assert likes(store) == ["1706.03762", "1810.04805", "2005.14165", "2104.12255"]
        fetched = store.papers.get("2104.12255")
        assert fetched is not None and fetched.title
    again = invoke(config, "import-likes", "ann@example.org", str(LIBRARY / "zotero_export.json"))
    assert "3 entries (CSL-JSON): 0 arXiv papers liked, 2 already liked, 1 without" in again.output


def test_a_bad_file_through_the_cli_imports_nothing(config: Path, tmp_path: Path) -> None:
    good = (LIBRARY / "zotero_export.bib").read_text(encoding="utf-8")
    broken = tmp_path / "broken.bib"
    broken.write_text(good + "\n@misc{late,\n  title = {never closed\n", encoding="utf-8")
    result = invoke(config, "import-likes", "ann@example.org", str(broken))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "broken.bib: line 68: the @misc entry is not closed" in result.output
    assert "nothing was imported" in result.output
    with store_of(config) as store:
        assert likes(store) == []
    unknown = invoke(config, "import-likes", "zed@example.org", str(broken))
    assert unknown.exit_code == 1 and "zed@example.org is not a subscriber" in unknown.output


# ---------------------------------------------------------------- the manage page


@pytest.fixture
def site(tmp_path: Path, api: str) -> Iterator[Site]:
    sources = f'[sources]\narxiv_api_url = "{api}/api/query"\narxiv_api_delay_seconds = 0\n'
    with open_site(tmp_path, sources) as s:
        s.db.papers.upsert(DAY_PAPERS, NOW)
        yield s


def upload(site: Site, path: str, name: str, data: bytes, token: str | None) -> httpx.Response:
    fields = {"csrf_token": token} if token is not None else {}
    return site.client.post(path + "/import", data=fields, files={"library": (name, data)})


def test_the_manage_page_imports_an_upload(site: Site) -> None:
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    page = site.client.get(path).text
    assert 'enctype="multipart/form-data"' in page and 'name="library"' in page
    token = csrf_tokens(page)[1]  # pause, import, preferences
    ris = (LIBRARY / "zotero_export.ris").read_bytes()
    assert site.client.get(path + "/import").status_code == 405  # GET never imports
    assert upload(site, path, "mine.ris", ris, None).status_code == 403
    r = upload(site, path, "mine.ris", ris, token)
    assert r.status_code == 200
    html = r.text
    assert "Imported: 3 entries (RIS): 2 arXiv papers liked, 1 without an arXiv ID." in html
    assert "without an arXiv ID: Protein structure from sequence" in html
    got = {i.value for i in site.db.subscribers.interests_for(sid) if i.kind == InterestKind.LIKE}
    assert got == {"2401.00001", "1706.03762", "2005.14165"}


def test_the_upload_refuses_bad_and_huge_files_and_keeps_nothing(site: Site) -> None:
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    token = csrf_tokens(site.client.get(path).text)[1]
    bad = json.dumps([{"title": "<script>alert(1)</script>"}, 3]).encode()
    r = upload(site, path, "lib.json", bad, token)
    assert r.status_code == 400
    assert "Nothing was imported: entry 2: not a CSL-JSON item" in r.text
    empty = upload(site, path, "lib.json", b"", token)
    assert "Choose a file to import" in empty.text
    huge = b"@misc{a, title = {" + b"x" * (MAX_LIBRARY_BYTES + 100 * 1024) + b"}}"
    r = upload(site, path, "huge.bib", huge, token)
    assert r.status_code == 413
    assert "at most 2 MB can be imported at once" in r.text
    just_over = b"@misc{a, title = {" + b"x" * MAX_LIBRARY_BYTES + b"}}"
    r = upload(site, path, "big.bib", just_over, token)
    assert r.status_code == 400 and "larger than 2 MB" in r.text
    assert {i.value for i in site.db.subscribers.interests_for(sid)} == {"diffusion", "2401.00001"}
    # Other forms keep their small cap.
    assert site.client.post(path, data={"keywords": "x" * 70_000}).status_code == 413


def test_a_library_of_hundreds_is_counted_in_the_digest_not_listed(
    tmp_path: Path, api: str, smtp_server: SMTPSink
) -> None:
    """An imported library of 400 papers: the digest's "Picked for" line counts them instead
    of naming each (it would fill the e-mail past where Gmail clips it, the unsubscribe links
    with it), and none of them is sent, the one announced today among them."""
    from datetime import date, timedelta

    day = date(2026, 11, 24)
    extra = f'[sources]\narxiv_api_url = "{api}/api/query"\narxiv_api_delay_seconds = 0\n'
    config = write_config(tmp_path, smtp_server.port, extra)
    old = [
        paper(f"2608.{i:05d}", f"KV cache study number {i}", day - timedelta(days=90))
        for i in range(400)
    ]
    today = [paper(f"2611.{i:05d}", f"KV cache compression, part {i}", day) for i in range(12)]
    liked_today = paper("2611.99999", "KV cache eviction you already liked", day)
    with store_of(config) as store:
        store.papers.upsert([*old, *today, liked_today], NOW)
        add_reader(store, "ann@example.org", [(InterestKind.KEYWORD, "KV cache")])
    library = tmp_path / "library.bib"
    library.write_text(
        "".join(
            f"@misc{{p{i},\n  title = {{{p.title}}},\n  eprint = {{{p.id}}},\n"
            "  archivePrefix = {arXiv}\n}\n\n"
            for i, p in enumerate([*old, liked_today])
        )
    )
    imported = invoke(config, "import-likes", "ann@example.org", str(library))
    assert "401 entries (BibTeX): 401 arXiv papers liked" in imported.output, imported.output
    sent = invoke(config, "send", "--date", day.isoformat())
    assert sent.exit_code == 0, sent.output
    (text,) = texts_by_recipient(smtp_server).values()
    assert "Picked for: KV cache · 401 liked papers" in unwrap(text)
    assert "like 2608." not in text
    assert "KV cache compression, part" in text and "you already liked" not in text
    (raw,) = [r["data"] for r in smtp_server.received]
    assert len(raw) < 80_000, len(raw)


def test_an_import_reads_the_stored_papers_once_not_once_per_entry(config: Path) -> None:
    """The papers a library names are looked up in one read (one statement per 999 IDs)
    before and one after fetching: a read per entry made a 5,000-entry upload read 25 M rows."""
    from newsletter import pipeline
    from newsletter.config import load_config

    entries = [paper(f"2608.{i:05d}", f"Study {i}", DAY_PAPERS[0].announced) for i in range(300)]
    bib = "".join(
        f"@misc{{p{i},\n  eprint = {{{p.id}}},\n  archivePrefix = {{arXiv}}\n}}\n\n"
        for i, p in enumerate(entries)
    ).encode()
    with store_of(config) as store:
        store.papers.upsert(entries, NOW)
        ann = store.subscribers.get_by_email("ann@example.org")
        assert ann is not None
        reads: list[str] = []
        store.conn.set_trace_callback(  # type: ignore[union-attr]
            lambda sql: reads.append(sql) if "FROM papers" in sql else None
        )
        report = import_likes(pipeline.Context(store, load_config(str(config))), ann, bib)
        store.conn.set_trace_callback(None)  # type: ignore[union-attr]
    assert len(report.liked) == 300
    assert len(reads) == 2, reads[:3]


def test_a_forged_link_gets_no_upload_read(site: Site) -> None:
    """The import's 2 MB allowance is for a real manage link: a forged one is refused on its
    signature before the body is read (counted at the ASGI boundary), like any other form."""
    received: list[int] = []

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        async def counted() -> Any:
            message = await receive()
            received.append(len(message.get("body", b"")))
            return message

        await site.app(scope, counted, send)

    client = TestClient(counting, raise_server_exceptions=False)
    big = b"@misc{a, title = {" + b"x" * 1_500_000 + b"}}"
    r = client.post("/manage/forged.token.here/import", files={"library": ("a.bib", big)})
    assert r.status_code == 400 and "not valid" in r.text
    assert sum(received) < 70_000, sum(received)
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    token = csrf_tokens(site.client.get(path).text)[1]
    received.clear()
    ris = (LIBRARY / "zotero_export.ris").read_bytes()
    client.cookies = site.client.cookies  # the CSRF cookie the manage page set
    r = client.post(path + "/import", data={"csrf_token": token}, files={"library": ("a.ris", ris)})
    assert r.status_code == 200 and sum(received) > len(ris)  # a real link's body is read


def test_one_import_fetches_from_arxiv_at_a_time_and_a_second_is_told_to_wait(
    tmp_path: Path,
) -> None:
    """While one upload waits on the arXiv API, another is answered at once (503, nothing
    imported) instead of holding a second worker thread and calling arXiv in parallel."""
    release, asked = threading.Event(), threading.Event()

    class SlowArxiv(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.set()
            release.wait(10)
            self.send_response(200)
            self.send_header("content-type", "application/atom+xml")
            self.send_header("content-length", str(len(API_ANSWER)))
            self.end_headers()
            self.wfile.write(API_ANSWER)

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowArxiv)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{httpd.server_address[1]}"
    sources = f'[sources]\narxiv_api_url = "{api}/api/query"\narxiv_api_delay_seconds = 0\n'
    try:
        with open_site(tmp_path, sources) as site:
            site.db.papers.upsert(DAY_PAPERS, NOW)
            ann, bob = site.active(), site.active("bob@example.org")
            paths = [site.token_path("manage", "manage", sid) for sid in (ann, bob)]
            tokens = [csrf_tokens(site.client.get(p).text)[1] for p in paths]
            bib = (LIBRARY / "zotero_export.bib").read_bytes()  # names papers not stored
            first: list[httpx.Response] = []
            other = TestClient(site.app, raise_server_exceptions=False, cookies=site.client.cookies)
            waiting = threading.Thread(
                target=lambda: first.append(upload_with(other, paths[0], bib, tokens[0]))
            )
            waiting.start()
            assert asked.wait(10), "the first import never asked the arXiv API"
            second = upload_with(site.client, paths[1], bib, tokens[1])
            release.set()
            waiting.join(20)
            assert second.status_code == 503 and second.headers["retry-after"] == "60"
            assert "another library is being imported" in second.text
            assert first and first[0].status_code == 200, first
            assert "arXiv papers liked" in first[0].text
            liked = {
                sid: {
                    i.value
                    for i in site.db.subscribers.interests_for(sid)
                    if i.kind == InterestKind.LIKE
                }
                for sid in (ann, bob)
            }
            assert liked[bob] == {"2401.00001"} and len(liked[ann]) > 1
            third = upload_with(site.client, paths[1], bib, tokens[1])  # the lock was let go
            assert third.status_code == 200
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()


def upload_with(client: Any, path: str, data: bytes, token: str) -> httpx.Response:
    return client.post(
        path + "/import", data={"csrf_token": token}, files={"library": ("lib.bib", data)}
    )


# ---------------------------------------------------------------- IDs, formats, partial fetches


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("see arXiv:2401.01234.", "2401.01234"),  # a sentence's full stop is not part of it
        ("arXiv:2401.123456", None),  # a longer number, not 2401.12345 with a stray 6
        ("arXiv: 2313.12345", None),  # there is no 13th month
        ("https://notarxiv.org/abs/2401.01234", None),
        ("x.arxiv:2401.01234", None),
        ("https://export.arxiv.org/abs/2401.01234v2", "2401.01234"),
        ("http://www.arxiv.org/pdf/hep-th/9901001v1.pdf", "hep-th/9901001"),
        ("arXiv:HEP-TH/9901001", "hep-th/9901001"),  # arXiv's own spelling
        ("arXiv:math.ag/0601001", "math.AG/0601001"),
        ("doi: 10.48550/ARXIV.2401.01234", "2401.01234"),
        ("10.1145/2401.01234", None),
    ],
)
def test_an_id_is_found_whole_and_spelled_as_arxiv_spells_it(text: str, found: str | None) -> None:
    data = f"@misc{{a,\n  title = {{T}},\n  note = {{{text}}}\n}}\n".encode()
    assert [e.arxiv_id for e in parse_library(data).entries] == [found]


def test_an_abstract_citing_other_work_does_not_give_the_entry_its_id() -> None:
    ris = (
        b"TY  - JOUR\nTI  - Paper X, not arXiv:2301.00002\nAB  - We extend arXiv:2301.00001\n"
        b"N2  - see arxiv.org/abs/2301.00003\nUR  - https://arxiv.org/abs/2401.01234\nER  - \n"
        b"TY  - JOUR\nTI  - A Nature paper\nAB  - Unlike arxiv.org/abs/2301.00001, we\nER  - \n"
    )
    assert [e.arxiv_id for e in parse_library(ris).entries] == ["2401.01234", None]


def test_odd_but_valid_exports_are_read() -> None:
    # A ')' inside braces does not end an entry opened with '('.
    bib = b"@misc(a, title={Why (not)}, eprint={2401.01234}, archivePrefix={arXiv})"
    assert [e.arxiv_id for e in parse_library(bib).entries] == ["2401.01234"]
    # One CSL item exported on its own, not in a list.
    one = b'{"type": "article", "title": "A", "URL": "https://arxiv.org/abs/2401.01234"}'
    assert [e.arxiv_id for e in parse_library(one).entries] == ["2401.01234"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'[{"title": "a", "n": ' + b"9" * 5000 + b"}]", "not valid CSL-JSON"),
    ],
)
def test_hostile_json_is_refused_not_crashed_on(data: bytes, message: str) -> None:
    with pytest.raises(LibraryError, match=message):
        parse_library(data)


def test_a_file_of_blank_lines_is_refused_at_once(tmp_path: Path) -> None:
    """Telling the format apart is linear: the BibTeX check used to rescan the blank lines
    from every line start, and a 2 MB upload of them held the import for hours. Run in a
    child process so a regression fails on the timeout instead of hanging the suite."""
    import subprocess
    import sys

    code = (
        "from newsletter.sources.library import parse_library\n"
        "from newsletter.errors import LibraryError\n"
        "try:\n    parse_library(b'x' + b'\\n' * 2_000_000)\n"
        "except LibraryError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "not a BibTeX (.bib), RIS (.ris) or CSL-JSON" in done.stdout


def test_a_paper_listed_twice_or_marked_not_for_me_is_counted_as_such(config: Path) -> None:
    with store_of(config) as store:
        sub = store.subscribers.get_by_email("ann@example.org")
        assert sub is not None
        store.subscribers.add_interests(
            sub.id, [Interest(InterestKind.NOT_PAPER, "1810.04805")], NOW
        )
    bib = (LIBRARY / "zotero_export.bib").read_text(encoding="utf-8")
    twice = "@misc{again,\n  title = {Attention again},\n  note = {arXiv:1706.03762v5}\n}\n"
    path = config.parent / "twice.bib"
    path.write_text(bib + twice, encoding="utf-8")
    result = invoke(config, "import-likes", "ann@example.org", str(path))
    assert result.exit_code == 0, result.output
    assert (
        "8 entries (BibTeX): 3 arXiv papers liked (1 fetched), 1 listed twice, "
        "1 marked not for you (left so), 1 not found on arXiv, 2 without an arXiv ID"
    ) in result.output
    assert "marked not for you: 1810.04805" in result.output
    with store_of(config) as store:
        assert likes(store) == ["1706.03762", "2005.14165", "2104.12255"]
        kinds = {
            i.value: i.kind for i in store.subscribers.interests_for(sub.id) if i.value[0] == "1"
        }
        assert kinds["1810.04805"] == InterestKind.NOT_PAPER


class FailingArxiv(http.server.BaseHTTPRequestHandler):
    """The arXiv API, down: every request gets a 503."""

    def do_GET(self) -> None:
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


def test_the_stored_papers_are_liked_when_arxiv_fails_for_the_rest(tmp_path: Path) -> None:
    """The arXiv API down: the papers already stored are liked all the same, and those it
    could not fetch are named as not fetched (not "not found"), to import again later."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailingArxiv)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api = f"http://127.0.0.1:{httpd.server_address[1]}"
    extra = (
        f'[sources]\narxiv_api_url = "{api}/api/query"\narxiv_api_delay_seconds = 0\n'
        "max_retries = 0\n"
    )
    try:
        config = write_config(tmp_path, 25, extra)
        with store_of(config) as store:
            store.papers.upsert(DAY_PAPERS, NOW)
            store.subscribers.add("ann@example.org", NOW)
        result = invoke(
            config, "import-likes", "ann@example.org", str(LIBRARY / "zotero_export.bib")
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.exit_code == 0, result.output
    assert (
        "7 entries (BibTeX): 3 arXiv papers liked, 2 not fetched (the arXiv API failed), "
        "2 without an arXiv ID"
    ) in result.output
    assert "the arXiv API failed (" in result.output and "503" in result.output
    assert "import the same file again later" in result.output
    assert "not fetched: 2301.99999; 2104.12255" in result.output
    assert "not found on arXiv" not in result.output
    with store_of(config) as store:
        assert likes(store) == ["1706.03762", "1810.04805", "2005.14165"]

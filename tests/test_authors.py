"""Following an author: names matched however they are written, set through the CLI, the web
form and the manage page, and the boost with its reason in the e-mail a real SMTP server got."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from newsletter.models import InterestKind
from newsletter.preferences import MAX_AUTHORS, Preferences, check_preferences
from newsletter.ranking.authors import (
    follow_matches,
    followed_author,
    index_authors,
    parse_name,
)
from newsletter.ranking.profile import Profile
from newsletter.ranking.rank import rank
from tests.conftest import SMTPSink
from tests.interest_support import (
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

DAY = date(2026, 11, 24)


def follows(follow: str, written: str) -> bool:
    idx = index_authors([paper("2611.00001", "T", DAY, [written])])
    return bool(follow_matches(idx, [[follow]])[0, 0])


@pytest.mark.parametrize(
    ("follow", "written"),
    [
        ("Yann LeCun", "Yann LeCun"),
        ("Yann LeCun", "Y. LeCun"),
        ("Yann LeCun", "LeCun, Yann"),
        ("yann lecun", "Yann Le Cun"),
        ("LeCun, Y.", "Yann LeCun"),
        ("Y LeCun", "Y. LeCun"),
        ("Jose Costa", "José Costa"),
        ("Zoë Ünal", "Zoe Unal"),
        ("Jean-Pierre Dupont", "J.-P. Dupont"),
        ("Mary Smith-Jones", "Smith Jones, Mary"),
        ("Ludwig van Beethoven", "L. van Beethoven"),
        ("Yu-Lin Chen", "Yulin Chen"),
        ("Yu-Lin Chen", "Y.-L. Chen"),
        ("Yu-Lin Chen", "Chen, Yu-Lin"),
        ("Y.-L. Chen", "Yu-Lin Chen"),
        ("Bernhard Schölkopf", "Bernhard Schoelkopf"),
        ("Juergen Schmidhuber", "Jürgen Schmidhuber"),
        ("Dang Minh", "Đặng Minh"),
        ("Isik Yilmaz", "Işık Yılmaz"),
        ("Soren Hauberg", "Søren Hauberg"),
        ("John Smith, Jr.", "John Smith"),
        ("John Smith", "Smith, Jr., John"),
        ("Thanh Nguyen", "Thanh Van Nguyen"),  # Văn, a middle name, is no particle
        ("Laurens van der Maaten", "Laurens Maaten"),
        ("Xiao Li", "Xiao Da Li"),
    ],
)
def test_a_follow_matches_the_same_person_however_the_name_is_written(
    follow: str, written: str
) -> None:
    assert follows(follow, written)


@pytest.mark.parametrize(
    ("follow", "written"),
    [
        ("Yann LeCun", "Yves LeCun"),  # another first name
        ("Yann LeCun", "Yann Lecunn"),  # another surname
        ("Y. LeCun", "A. LeCun"),
        ("Yann LeCun", "LeCun Yann"),  # without a comma the last word is the surname
        ("Yu-Lin Chen", "Yu-Wei Chen"),  # another given name sharing its first part
        ("Yu-Lin Chen", "Yu Chen"),
        ("Jean-Pierre Serre", "Jean-Luc Serre"),
        ("Jean-Pierre Serre", "J.-L. Serre"),
        ("Y.-L. Chen", "Yu-Wei Chen"),
        ("Jean Dupont", "J.-P. Dupont"),  # J.-P. is not Jean
    ],
)
def test_a_follow_does_not_match_someone_else(follow: str, written: str) -> None:
    assert not follows(follow, written)


def test_a_name_needs_a_given_name_and_a_surname() -> None:
    assert parse_name("LeCun") is None and parse_name("  ") is None
    errors = check_preferences(Preferences(authors=["LeCun"]))
    assert "'LeCun' is not a full name" in errors["authors"]
    errors = check_preferences(Preferences(authors=["Yann\x07 LeCun"]))
    assert "one line" in errors["authors"]
    assert check_preferences(Preferences(authors=["Yann LeCun"])) == {}
    too_many = Preferences(authors=[f"Ann Author{i}" for i in range(31)])
    assert "at most 30 authors" in check_preferences(too_many)["authors"]
    # A follow alone is enough to sign up on the web form.
    assert "keywords" not in check_preferences(
        Preferences(authors=["Yann LeCun"]), need_interest=True
    )


def test_readers_without_follows_rank_as_before() -> None:
    papers = [
        paper("2611.00001", "KV cache compression", DAY, ["Yann LeCun"]),
        paper("2611.00002", "Protein folding at scale", DAY, ["Ann Other"]),
    ]
    plain = Profile(1, queries=(("KV cache", 1.0),))
    following = Profile(2, queries=(("KV cache", 1.0),), authors=("Ann Other",))
    alone, both = rank(papers, [plain], today=DAY), rank(papers, [plain, following], today=DAY)
    assert [p.score for p in alone[0].picks] == [p.score for p in both[0].picks]
    assert [p.paper.id for p in both[1].picks] == ["2611.00001", "2611.00002"]
    assert both[1].picks[1].reason.startswith("by Ann Other, whom you follow")


# ---------------------------------------------------------------- CLI


@pytest.fixture
def config(tmp_path: Path, smtp_server: SMTPSink) -> Path:
    return write_config(tmp_path, smtp_server.port)


def test_the_author_limit_counts_the_authors_already_followed(config: Path) -> None:
    """Thirty follows one call at a time, then a thirty-first: refused, as the manage page
    would refuse the list, instead of stored past the limit."""
    for i in range(MAX_AUTHORS):
        done = invoke(config, "subscribe", "ann@example.org", "--author", f"Ann Author{i}")
        assert done.exit_code == 0, done.output
    over = invoke(config, "subscribe", "ann@example.org", "--author", "One Toomany")
    assert over.exit_code != 0
    assert f"at most {MAX_AUTHORS} authors" in over.output
    assert "counting the ones ann@example.org has already" in over.output
    with store_of(config) as store:
        sub = store.subscribers.get_by_email("ann@example.org")
        assert sub is not None
        follows = [
            i for i in store.subscribers.interests_for(sub.id) if i.kind == InterestKind.AUTHOR
        ]
        assert len(follows) == MAX_AUTHORS and "One Toomany" not in {i.value for i in follows}
    again = invoke(config, "subscribe", "ann@example.org", "--author", "Ann Author3")
    assert again.exit_code == 0, again.output  # nothing new: nothing over the limit


def test_subscribe_author_through_the_cli(config: Path) -> None:
    done = invoke(config, "subscribe", "ann@example.org", "--author", "LeCun, Yann", "--confirmed")
    assert done.exit_code == 0, done.output
    more = invoke(config, "subscribe", "ann@example.org", "--author", "Geoffrey Hinton")
    assert "1 new interest(s) added" in more.output
    bad = invoke(config, "subscribe", "bob@example.org", "--author", "Hinton")
    assert bad.exit_code == 2 and "--author" in bad.output and "not a full name" in bad.output
    listed = invoke(config, "subscribers")
    assert "author: LeCun, Yann, author: Geoffrey Hinton" in listed.output
    with store_of(config) as store:
        sub = store.subscribers.get_by_email("ann@example.org")
        assert sub is not None
        got = {(i.kind, i.value) for i in store.subscribers.interests_for(sub.id)}
        assert store.subscribers.get_by_email("bob@example.org") is None
    assert got == {
        (InterestKind.AUTHOR, "LeCun, Yann"),
        (InterestKind.AUTHOR, "Geoffrey Hinton"),
    }


def test_a_followed_authors_paper_arrives_with_the_reason(
    config: Path, smtp_server: SMTPSink
) -> None:
    with store_of(config) as store:
        store.papers.upsert(
            [
                paper("2611.00001", "Self-supervised world models", DAY, ["Y. LeCun", "A. B"]),
                paper("2611.00002", "Galaxy surveys with telescopes", DAY, ["Yves LeCun"]),
                paper("2611.00003", "KV cache compression for LLMs", DAY, ["Jane Doe"]),
            ],
            NOW,
        )
        add_reader(
            store,
            "ann@example.org",
            [(InterestKind.AUTHOR, "Yann Le Cun"), (InterestKind.KEYWORD, "KV cache")],
        )
        add_reader(store, "bob@example.org", [(InterestKind.AUTHOR, "lecun, y.")])
        add_reader(store, "cy@example.org", [(InterestKind.KEYWORD, "KV cache")])
    result = invoke(config, "send", "--date", DAY.isoformat())
    assert result.exit_code == 0, result.output
    got = {k: unwrap(v) for k, v in texts_by_recipient(smtp_server).items()}
    ann, bob, cy = got["ann@example.org"], got["bob@example.org"], got["cy@example.org"]
    assert "Picked for: following Yann Le Cun · KV cache" in ann
    assert "Self-supervised world models" in ann and "Galaxy surveys" not in ann
    # The paper gives only "Y.": the reason names the author as the reader typed the follow.
    assert "Why: by Yann Le Cun, whom you follow" in ann
    assert "KV cache compression" in ann
    assert (
        "Why: by Y. LeCun, whom you follow" in bob and "Why: by Yves LeCun, whom you follow" in bob
    )
    assert "Self-supervised world models" not in cy and "whom you follow" not in cy


# ---------------------------------------------------------------- web


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with open_site(tmp_path) as s:
        yield s


def test_the_subscribe_form_takes_authors_one_a_line(site: Site) -> None:
    page = site.client.get("/subscribe").text
    assert 'name="authors"' in page and "Authors to follow" in page
    r = site.subscribe(
        keywords="", description="", authors="LeCun, Yann\nGeoffrey Hinton; Yann LeCun"
    )
    assert r.status_code == 200, r.text
    sub = site.db.subscribers.get_by_email("ann@example.org")
    assert sub is not None and sub.status == "pending"
    stored = site.db.subscribers.interests_for(sub.id)
    authors = [i.value for i in stored if i.kind == InterestKind.AUTHOR]
    assert authors == ["LeCun, Yann", "Geoffrey Hinton", "Yann LeCun"]


def test_the_manage_page_shows_saves_and_refuses_authors(site: Site) -> None:
    sid = site.active()
    path = site.token_path("manage", "manage", sid)
    page = site.client.get(path)
    data = {
        "csrf_token": csrf_tokens(page.text)[-1],
        "keywords": "diffusion",
        "authors": "Yann LeCun\nJosé Costa",
        "timezone": "UTC",
        "hour": "7",
        "size": "10",
    }
    r = site.client.post(path, data=data, follow_redirects=False)
    assert r.status_code == 303
    shown = site.client.get(path).text
    assert ">Yann LeCun\nJosé Costa</textarea>" in shown
    kinds = {(i.kind, i.value) for i in site.db.subscribers.interests_for(sid)}
    assert (InterestKind.AUTHOR, "José Costa") in kinds
    assert (InterestKind.LIKE, "2401.00001") in kinds  # likes stay
    bad = site.client.post(path, data={**data, "authors": "<b>Costa</b>"})
    assert bad.status_code == 400 and "is not a full name" in bad.text
    assert "<b>Costa</b>" not in bad.text and "&lt;b&gt;Costa&lt;/b&gt;" in bad.text
    assert {i.value for i in site.db.subscribers.interests_for(sid)} >= {"José Costa"}


@pytest.mark.parametrize(
    ("follow", "written", "shown"),
    [
        ("Laurens van der Maaten", "L. van der Maaten", "Laurens van der Maaten"),
        ("Jean-Pierre Serre", "J.-P. Serre", "Jean-Pierre Serre"),
        ("José García", "J. García", "José García"),
        ("Yann LeCun", "Y. LeCun Jr.", "Yann LeCun"),
        ("Y. LeCun", "Yann LeCun", "Yann LeCun"),  # the paper's full name, as written
        ("y lecun", "Y. LeCun", "Y. LeCun"),
    ],
)
def test_the_reason_names_the_author_as_written_never_pieced_together(
    follow: str, written: str, shown: str
) -> None:
    idx = index_authors([paper("2611.00001", "T", DAY, ["A. Other", written])])
    assert followed_author(idx, 0, [follow]) == shown

"""Ranking properties, through the store and `pipeline.build_digests` (real SQLite file)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from newsletter import pipeline
from newsletter.models import Interest, InterestKind, Paper, SubscriberStatus
from newsletter.ranking.profile import MAX_EXAMPLES, Profile
from newsletter.ranking.rank import rank, redundancy, select
from newsletter.store import Database
from tests.conftest import make_config

EVAL = Path(__file__).parent / "fixtures" / "eval"
DAY = date(2026, 11, 26)
NOW = datetime(2026, 11, 26, 7, 0, tzinfo=UTC)
_ROWS = [json.loads(line) for line in (EVAL / "corpus.jsonl").read_text().splitlines()]


def corpus_paper(n: int, *, day: date = DAY, **kw: object) -> Paper:
    """Real title and abstract number n of the eval corpus, as an arXiv paper of `day`."""
    row = _ROWS[n]
    fields: dict[str, object] = {
        "id": f"2611.{n:05d}",
        "title": row["title"],
        "abstract": row["abstract"],
        "announced": day,
        "categories": ("cs.LG",),
        "sources": ("arxiv_rss",),
    }
    fields.update(kw)
    return Paper(**fields)  # type: ignore[arg-type]


def find(word: str, limit: int = 3) -> list[int]:
    """Corpus rows whose title contains `word` (case-insensitive)."""
    hits = [i for i, r in enumerate(_ROWS) if word.lower() in r["title"].lower()]
    assert len(hits) >= limit, f"the fixture corpus has too few titles with {word!r}"
    return hits[:limit]


def subscriber(store: Database, email: str, *interests: Interest, size: int = 10) -> int:
    sub, _ = store.subscribers.add(email, NOW, status=SubscriberStatus.ACTIVE, digest_size=size)
    store.subscribers.set_interests(sub.id, interests, NOW)
    return sub.id


def digest_for(store: Database, tmp_path: Path, sub_id: int, extra: str = "", day: date = DAY):
    cfg = make_config(tmp_path, extra)
    subs = [s for s in store.subscribers.list() if s.id == sub_id]
    (digest,) = pipeline.build_digests(pipeline.Context(store, cfg, clock=lambda: NOW), day, subs)
    return digest


def ids(picks) -> list[str]:
    return [p.paper.id for p in picks]


def kw(value: str, kind: InterestKind = InterestKind.KEYWORD) -> Interest:
    return Interest(kind=kind, value=value)


def test_liked_papers_near_twin_ranks_above_an_unrelated_paper(store, tmp_path):
    liked = corpus_paper(find("KV Cache", 1)[0], day=DAY - timedelta(days=30))
    twin = _twin(liked, "2611.90001")
    background = [corpus_paper(i) for i in range(40, 120)]
    store.papers.upsert([liked, twin, *background], NOW)
    sid = subscriber(store, "like@example.org", kw(liked.id, InterestKind.LIKE))
    digest = digest_for(store, tmp_path, sid)
    got = ids(digest.picks)
    assert got and got[0] == twin.id, [p.paper.title for p in digest.picks]
    assert liked.id not in got  # they know the paper they liked
    reason = digest.picks[0].reason
    assert f"like: {liked.title[:40]}" in reason, reason  # names the liked paper by its title


def _twin(paper: Paper, pid: str) -> Paper:
    """The same paper in other words, announced on DAY."""
    sentences = paper.abstract.split(". ")
    return replace(
        paper,
        id=pid,
        title="Revisiting " + paper.title,
        abstract=". ".join(sentences[1:] + sentences[:1]),
        announced=DAY,
    )


def test_a_library_of_many_likes_learns_from_its_latest_and_still_knows_them_all(store, tmp_path):
    """A reader's likes beyond the latest `MAX_EXAMPLES` (a library import) no longer shape
    the picks (each run would read, index and fit them all), but every liked paper stays one
    they know. Two readers like the same papers in another order: the one who liked
    `forgotten` last is picked its near twin because of it, and is sent `first`, which the
    other liked first of all and is not sent though it is one of the day's papers."""
    kv = find("KV Cache", 3)
    first = corpus_paper(kv[0])  # announced today
    last = corpus_paper(kv[1], day=DAY - timedelta(days=30))
    forgotten = corpus_paper(kv[2], day=DAY - timedelta(days=60))
    rest = [i for i in range(200, 600) if i not in kv][:MAX_EXAMPLES]
    fillers = [corpus_paper(i, day=DAY - timedelta(days=60)) for i in rest]
    twins = [_twin(last, "2611.90001"), _twin(forgotten, "2611.90002")]
    background = [corpus_paper(i) for i in range(40, 120) if i not in kv]
    store.papers.upsert([first, last, forgotten, *twins, *fillers, *background], NOW)

    def reader(email: str, likes: list[Paper]) -> int:
        interests = [kw(p.id, InterestKind.LIKE) for p in likes]
        return subscriber(store, email, *interests, size=20)

    library = reader("lib@example.org", [first, forgotten, *fillers, last])
    control = reader("ctl@example.org", [*fillers, forgotten, last])
    got, seen = (digest_for(store, tmp_path, sid).picks for sid in (library, control))

    def named(picks, liked: Paper) -> list[str]:
        return [p.paper.id for p in picks if f"like: {liked.title[:40]}" in p.reason]

    assert first.id in ids(seen), "the control shows `first` would be picked"
    assert first.id not in ids(got)  # liked, though long before the latest likes
    assert named(seen, forgotten) == [twins[1].id], [(p.paper.title, p.reason) for p in seen]
    assert named(got, forgotten) == []  # beyond the latest MAX_EXAMPLES: not learnt from
    assert twins[0].id in named(got, last)


def test_negative_keyword_pushes_matching_papers_out(store, tmp_path):
    quant = [corpus_paper(i) for i in find("Quantiz", 6)]
    others = [corpus_paper(i) for i in range(0, 60)]
    store.papers.upsert([*quant, *others], NOW)
    plain = subscriber(store, "a@example.org", kw("efficient inference"), size=50)
    picky = subscriber(
        store,
        "b@example.org",
        kw("efficient inference"),
        kw("quantization", InterestKind.NOT_KEYWORD),
        size=50,
    )
    before = digest_for(store, tmp_path, plain)
    after = digest_for(store, tmp_path, picky)
    quant_ids = {p.id for p in quant}
    assert quant_ids & set(ids(before.picks)), "the query should reach quantization papers"
    assert not quant_ids & set(ids(after.picks))
    assert not any("quantiz" in (p.paper.title + p.paper.abstract).lower() for p in after.picks)
    assert not quant_ids & set(ids(after.trending))


def test_already_sent_papers_never_come_back(store, tmp_path):
    papers = [corpus_paper(i, day=DAY - timedelta(days=1)) for i in find("Federated", 6)]
    store.papers.upsert(papers, NOW)
    sid = subscriber(store, "s@example.org", kw("federated learning"), size=3)
    yesterday = DAY - timedelta(days=1)
    cfg_extra = "[digest]\nwindow_days = 7\n"
    first = digest_for(store, tmp_path, sid, cfg_extra, day=yesterday)
    assert len(first.picks) == 3
    sent = first.paper_ids
    assert store.sends.claim(sid, yesterday, "<m1@example.org>", NOW)
    store.sends.mark_sent(sid, yesterday, "<m1@example.org>", sent, 1, NOW)
    # A re-announced (cross-listed) copy of a sent paper today must not come back either.
    store.papers.upsert([replace(papers[0], announce_type="cross", hf_date=DAY, upvotes=99)], NOW)
    second = digest_for(store, tmp_path, sid, cfg_extra)
    assert second.picks, second.empty_reason
    assert not set(sent) & set(second.paper_ids)


def test_a_sent_date_rebuilds_as_sent_and_the_next_date_repeats_nothing(store, tmp_path):
    papers = [corpus_paper(i, day=DAY) for i in find("Federated", 6)]
    store.papers.upsert(papers, NOW)
    sid = subscriber(store, "same@example.org", kw("federated learning"), size=3)
    cfg_extra = "[digest]\nwindow_days = 7\n"
    first = digest_for(store, tmp_path, sid, cfg_extra)
    assert len(first.picks) == 3
    assert store.sends.claim(sid, DAY, "<same@example.org>", NOW)
    store.sends.mark_sent(sid, DAY, "<same@example.org>", first.paper_ids, 1, NOW)
    again = digest_for(store, tmp_path, sid, cfg_extra)
    assert again.paper_ids == first.paper_ids
    assert [p.reason for p in again.picks] == [p.reason for p in first.picks]
    # The next day, every paper is on Hugging Face: all are fresh again, the sent ones stay out.
    tomorrow = [replace(p, hf_date=DAY + timedelta(days=1), upvotes=50) for p in papers]
    store.papers.upsert(tomorrow, NOW)
    following = digest_for(store, tmp_path, sid, cfg_extra, day=DAY + timedelta(days=1))
    assert following.picks, following.empty_reason
    assert not set(first.paper_ids) & set(following.paper_ids)


def test_equal_relevance_is_broken_by_upvotes(store, tmp_path):
    base = corpus_paper(find("Mamba", 1)[0])
    quiet = replace(base, id="2611.80001", upvotes=None)
    loud = replace(base, id="2611.80002", upvotes=42, comments=3, sources=("huggingface",))
    store.papers.upsert([quiet, loud, *[corpus_paper(i) for i in range(0, 30)]], NOW)
    sid = subscriber(store, "m@example.org", kw("Mamba"))
    digest = digest_for(store, tmp_path, sid)
    got = ids(digest.picks)
    assert got.index(loud.id) < got.index(quiet.id)
    reason = digest.picks[got.index(loud.id)].reason
    assert reason.startswith("matches: Mamba") and "▲ 42" in reason and "💬 3" in reason


def test_empty_interest_list_yields_the_trending_order(store, tmp_path):
    votes = [5, 80, 0, 33, 12, 0, 61, 2]
    papers = [corpus_paper(i, upvotes=v or None) for i, v in enumerate(votes)]
    store.papers.upsert(papers, NOW)
    sid = subscriber(store, "t@example.org", size=5)
    digest = digest_for(store, tmp_path, sid)
    expected = [p.id for p in sorted(papers, key=lambda p: -(p.upvotes or 0))][:5]
    assert ids(digest.picks) == expected
    assert digest.picks[0].reason == "trending today · ▲ 80"


def test_no_papers_available_gives_an_empty_explained_result(store, tmp_path):
    old = [corpus_paper(i, day=DAY - timedelta(days=10)) for i in range(5)]
    store.papers.upsert(old, NOW)
    sid = subscriber(store, "e@example.org", kw("federated learning"))
    last = DAY - timedelta(days=2)
    assert store.sends.claim(sid, last, "<m0@example.org>", NOW)
    store.sends.mark_sent(sid, last, "<m0@example.org>", [], 1, NOW)
    digest = digest_for(store, tmp_path, sid)
    assert digest.picks == () and digest.trending == ()
    assert digest.empty_reason == f"No new papers since your last digest on {last}."


def test_everything_already_received_is_explained(store, tmp_path):
    papers = [corpus_paper(i) for i in find("Federated", 3)]
    store.papers.upsert(papers, NOW)
    sid = subscriber(store, "r@example.org", kw("federated learning"))
    store.sends.claim(sid, DAY - timedelta(days=5), "<m@example.org>", NOW)
    store.sends.mark_sent(
        sid, DAY - timedelta(days=5), "<m@example.org>", [p.id for p in papers], 1, NOW
    )
    digest = digest_for(store, tmp_path, sid)
    assert digest.picks == ()
    assert digest.empty_reason.startswith("You have already received all 3 new papers")


def test_papers_before_the_last_digest_or_window_are_not_candidates(store, tmp_path):
    rows = find("Federated", 3)
    store.papers.upsert(
        [
            corpus_paper(rows[0], day=DAY),
            corpus_paper(rows[1], day=DAY - timedelta(days=2)),
            corpus_paper(rows[2], day=DAY - timedelta(days=9)),
        ],
        NOW,
    )
    sid = subscriber(store, "w@example.org", kw("federated learning"))
    assert set(ids(digest_for(store, tmp_path, sid).picks)) == {
        f"2611.{rows[0]:05d}",
        f"2611.{rows[1]:05d}",
    }
    store.sends.claim(sid, DAY - timedelta(days=1), "<m@example.org>", NOW)
    store.sends.mark_sent(sid, DAY - timedelta(days=1), "<m@example.org>", [], 1, NOW)
    assert ids(digest_for(store, tmp_path, sid).picks) == [f"2611.{rows[0]:05d}"]


def test_category_filter_and_boost(store, tmp_path):
    row = find("Federated", 1)[0]
    lg = corpus_paper(row, categories=("cs.LG",))
    cl = replace(lg, id="2611.60001", categories=("cs.CL",))
    store.papers.upsert([cl, lg], NOW)
    sid = subscriber(store, "c@example.org", kw("federated learning"), kw("cs.CL", "category"))
    boosted = digest_for(store, tmp_path, sid)
    assert ids(boosted.picks)[0] == cl.id and lg.id in ids(boosted.picks)
    assert "cs.CL" in boosted.picks[0].matched
    filtered = digest_for(store, tmp_path, sid, '[digest]\ncategory_mode = "filter"\n')
    assert ids(filtered.picks) == [cl.id]


def test_votes_train_a_model_that_moves_the_ranking(store, tmp_path):
    speech = [corpus_paper(i) for i in find("Speech", 5) + find("Audio", 1)]
    vision = [corpus_paper(i) for i in find("Image", 6)]
    past = [replace(p, announced=DAY - timedelta(days=20)) for p in speech[:4] + vision[:4]]
    today = speech[4:] + vision[4:] + [corpus_paper(i) for i in range(200, 260)]
    store.papers.upsert(past + today, NOW)
    sid = subscriber(store, "v@example.org", kw("efficient neural network"), size=20)
    neutral = ids(digest_for(store, tmp_path, sid).picks)
    for p in past:
        store.subscribers.record_feedback(sid, p.id, 1 if p in past[:4] else -1, NOW)
    trained = digest_for(store, tmp_path, sid)
    got = ids(trained.picks)

    def best(ranked: list[str], group: list[Paper]) -> int:
        return min((ranked.index(p.id) for p in group if p.id in ranked), default=99)

    assert best(got, speech[4:]) < best(got, vision[4:])
    assert best(got, speech[4:]) <= best(neutral, speech[4:])


def test_near_duplicates_are_not_picked_together(store, tmp_path):
    base = corpus_paper(find("Mamba", 1)[0])
    copies = [replace(base, id=f"2611.7000{i}", title=f"{base.title} (v{i})") for i in range(4)]
    others = [corpus_paper(i) for i in find("Mamba", 6)[1:]]
    store.papers.upsert([*copies, *others, *[corpus_paper(i) for i in range(300, 340)]], NOW)
    sid = subscriber(store, "d@example.org", kw("Mamba state space models"), size=4)
    got = ids(digest_for(store, tmp_path, sid).picks)
    assert len(got) == 4
    assert sum(1 for x in got if x.startswith("2611.7000")) < 4


def test_batch_ranking_equals_ranking_alone(monkeypatch):
    """Vectorised batches (chunk boundaries included) give each subscriber its own result."""
    import newsletter.ranking.rank as rank_module

    papers = [corpus_paper(i, upvotes=(i * 7) % 40 or None) for i in range(150)]
    texts = ["federated learning", "spiking neural networks", "KV cache", "", "image compression"]
    profiles = [
        Profile(key=i, queries=((t, 1.0),) if t else (), size=5) for i, t in enumerate(texts * 3)
    ]
    alone = [rank(papers, [p], today=DAY)[0] for p in profiles[:5]]
    monkeypatch.setattr(rank_module, "CHUNK", 4)
    together = rank(papers, profiles, today=DAY)
    for i, r in enumerate(together):
        assert ids(r.picks) == ids(alone[i % 5].picks)


@pytest.mark.parametrize("mode", ["boost", "filter"])
def test_subscriber_with_only_categories_gets_that_category_by_trend(store, tmp_path, mode):
    a = corpus_paper(1, categories=("cs.CV",), upvotes=3)
    b = corpus_paper(2, categories=("cs.CV", "cs.LG"), upvotes=30)
    c = corpus_paper(3, categories=("cs.CL",), upvotes=90)
    store.papers.upsert([a, b, c], NOW)
    sid = subscriber(store, "k@example.org", kw("cs.CV", "category"))
    digest = digest_for(store, tmp_path, sid, f'[digest]\ncategory_mode = "{mode}"\n')
    assert ids(digest.picks) == [b.id, a.id]
    assert ids(digest.trending) == ([c.id] if mode == "boost" else [])


def test_selection_never_picks_an_excluded_paper_and_keeps_score_order():
    """Rows mostly -inf (not allowed): the fast top-c search must still find every allowed paper."""
    rng = np.random.default_rng(3)
    final = rng.random((300, 500)).astype(np.float32)
    final[rng.random(final.shape) < 0.97] = -np.inf
    final[:5] = -np.inf  # nothing allowed at all
    chosen = select(final, redundancy(np.eye(500, dtype=np.float32), 0.4), 10, 1.0)
    for row, picks in zip(final, chosen, strict=True):
        allowed = np.flatnonzero(np.isfinite(row))
        expected = allowed[np.argsort(-row[allowed], kind="stable")][:10]
        assert picks[: len(expected)].tolist() == expected.tolist()
        assert (picks[len(expected) :] == -1).all()
    sim = rng.random((500, 500)).astype(np.float32)
    mmr = select(final, redundancy((sim + sim.T) / 2, 0.4), 10, 0.7)
    for row, picks in zip(final, mmr, strict=True):
        got = picks[picks >= 0]
        assert set(got.tolist()) <= set(np.flatnonzero(np.isfinite(row)).tolist())
        assert len(got) == min(10, int(np.isfinite(row).sum()))


def test_a_long_interest_is_explained_by_its_phrases_not_loose_words(store, tmp_path):
    kv = corpus_paper(
        0,
        title="KV Cache Compression for Large Language Models",
        abstract=(
            "We compress the KV cache of large language models during decoding so that long "
            "contexts fit in memory."
        ),
    )
    store.papers.upsert([kv, *[corpus_paper(i) for i in range(1, 30)]], NOW)
    interest = kw(
        "efficient inference of large language models with KV cache compression", InterestKind.TEXT
    )
    sid = subscriber(store, "kv@example.org", interest)
    digest = digest_for(store, tmp_path, sid)
    pick = next(p for p in digest.picks if p.paper.id == kv.id)
    assert pick.matched[:2] == ("KV cache compression", "large language models")
    assert pick.reason.startswith("matches: KV cache compression, large language models")


def test_a_profile_lists_its_likes_by_when_they_were_liked(store) -> None:
    """The examples learnt from are the latest likes (`MAX_EXAMPLES`), so a profile lists
    them by when they were liked: an interest's like and a 👍 alike, a paper liked twice at
    its later time, a 👎 turned 👍 at the 👍; likes of unknown time first, as given."""
    from newsletter.models import Feedback
    from newsletter.ranking.profile import profile_from

    def on(day: int) -> datetime:
        return datetime(2026, 11, day, 7, 0, tzinfo=UTC)

    sid = subscriber(store, "when@example.org")
    store.subscribers.add_interests(sid, [kw("2401.00001", InterestKind.LIKE)], on(1))
    store.subscribers.add_interests(sid, [kw("2401.00002", InterestKind.LIKE)], on(20))
    store.subscribers.add_interests(sid, [kw("2401.00009", InterestKind.NOT_PAPER)], on(2))
    stored = store.subscribers.interests_for(sid)
    assert [i.created_at for i in stored] == [on(1), on(20), on(2)]
    store.subscribers.set_interests(sid, [kw("KV cache"), *stored], on(28))  # preferences saved
    stored = store.subscribers.interests_for(sid)
    assert [i.created_at for i in stored] == [on(28), on(1), on(20), on(2)]
    stored = stored[1:]
    interests = [kw("2401.00003", InterestKind.LIKE), *stored]  # no time: made in code
    votes = [
        Feedback(sid, "2401.00004", 1, on(5)),
        Feedback(sid, "2401.00001", 1, on(25)),  # liked again, later
        Feedback(sid, "2401.00009", 1, on(3)),  # "not this" first, then 👍
        Feedback(sid, "2401.00005", -1, on(4)),
        Feedback(sid, "2401.00002", -1, on(19)),  # 👎, then liked in an import on day 20
    ]
    profile = profile_from(sid, interests, votes)
    assert profile.liked == ("2401.00003", "2401.00009", "2401.00004", "2401.00002", "2401.00001")
    assert profile.disliked == ("2401.00005",)
    unknown = [Feedback(sid, "2401.00002", -1, None), Feedback(sid, "2401.00003", -1, None)]
    profile = profile_from(sid, interests, [*votes, *unknown])  # a vote of unknown time wins
    assert profile.liked == ("2401.00009", "2401.00004", "2401.00001")
    assert profile.disliked == ("2401.00002", "2401.00003", "2401.00005")

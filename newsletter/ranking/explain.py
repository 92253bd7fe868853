"""Why a paper was picked ("matches: KV cache, quantization · ▲ 42 · ★ 310"), or why none was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from newsletter.models import Paper, Pick
from newsletter.ranking.authors import followed_author
from newsletter.ranking.facets import named_parts
from newsletter.ranking.trending import figures

if TYPE_CHECKING:
    from typing import TypeAlias

    from newsletter.ranking.profile import Profile
    from newsletter.ranking.scoring import Day

    # What a reason is cached under: the subscriber's interests (queries, categories, any likes)
    # and, within those, the paper (or the liked title and the paper).
    _InterestsKey: TypeAlias = tuple[
        tuple[tuple[str, float], ...], tuple[str, ...], bool, tuple[str, ...]
    ]
    _PaperKey: TypeAlias = int | tuple[str, int]
    _Reason: TypeAlias = tuple[str, tuple[str, ...]]

MAX_MATCHED = 4
LIKE_SIMILARITY = 0.25  # a liked paper this similar is named in the reason
REASON_CACHE = 2_000_000  # interest sets, and (interest, paper) matches, kept for one day


@dataclass(frozen=True)
class _Query:
    text: str
    ids: frozenset[int]  # term ids of its words (found in today's papers)
    ranked: tuple[tuple[int, str], ...]  # (term id, surface word), rarest word first
    whole: bool  # short enough to be named as a whole when all its words match
    phrases: tuple[tuple[int, str, frozenset[int]], ...] = ()  # (bigram id, "KV cache", word ids)
    facets: tuple[tuple[str, frozenset[int]], ...] = ()  # its facets or parts, with word ids
    acronyms: frozenset[int] = frozenset()  # words the reader typed as acronyms ("ViT", "MRI")
    complete: bool = False  # every word of the interest occurs in today's papers
    hits: dict[int, tuple[str, ...]] = field(default_factory=dict, compare=False)  # paper ->


def _looks_acronym(word: str) -> bool:
    """ "MRI", "CT", "ViT": two capitals or more, as readers write acronyms."""
    return sum(c.isupper() for c in word) >= 2


def _join_phrases(phrases: list[str]) -> list[str]:
    """Chain overlapping phrases: "KV cache" + "cache compression" → "KV cache compression"."""
    out: list[list[str]] = []
    for phrase in phrases:
        first, second = phrase.split(" ", 1)
        for words in out:
            if words[-1].lower() == first.lower() and second.lower() not in map(str.lower, words):
                words.append(second)
                break
            if words[0].lower() == second.lower() and first.lower() not in map(str.lower, words):
                words.insert(0, first)
                break
        else:
            out.append([first, second])
    return [" ".join(words) for words in out]


def _pick(paper: Paper, score: float, reason: str, matched: tuple[str, ...]) -> Pick:
    """`Pick(paper, score, reason, matched)`, without the frozen dataclass's `__init__`.

    That `__init__` sets each field through `object.__setattr__`, and a day of 100,000
    digests makes a million picks: filling the instance dict directly takes half the time.
    """
    pick = _NEW(Pick)
    pick.__dict__.update(paper=paper, score=score, reason=reason, matched=matched)
    return pick


_NEW = object.__new__


def _short(title: str, limit: int = 50) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Ranking:
    """One subscriber's result: picks (best first), a trending section, or why it is empty."""

    picks: tuple[Pick, ...] = ()
    trending: tuple[Pick, ...] = ()
    empty_reason: str = ""


class Explainer:
    """Builds `Ranking`s (Picks with reasons) from chosen paper indices."""

    def __init__(self, day: Day | None, examples: Mapping[str, Paper]) -> None:
        self.day = day
        self.examples = examples
        self._queries: dict[str, _Query] = {}
        self._doc_terms: dict[int, frozenset[int]] = {}
        self._match_count = 0  # (interest, paper) matches kept in the `_Query.hits`
        self._figure_cache: dict[int, tuple[str, ...]] = {}
        self._categories: dict[int, set[str]] = {}  # paper -> its categories, lower case
        self._tails: dict[int, str] = {}  # paper -> " · ▲ 42 · ★ 310" (its figures)
        self._trending_cache: dict[int, Pick] = {}
        # interests -> (their parsed queries, paper (or (liked title, paper)) -> reason)
        self._reasons: dict[_InterestsKey, tuple[list[_Query], dict[_PaperKey, _Reason]]] = {}

    @classmethod
    def empty(cls) -> Explainer:
        return cls(None, {})

    # ------------------------------------------------------------ empty results

    @staticmethod
    def no_papers(profile: Profile) -> str:
        label = profile.since_label or "today"
        return f"No new papers {label}."

    def _empty_reason(self, profile: Profile, fresh: int, unsent: int) -> str:
        label = profile.since_label or "today"
        if fresh == 0:
            return self.no_papers(profile)
        what = "passed your filters" if not profile.has_interests else "matched your interests"
        if unsent == 0:
            every = "the one new paper" if fresh == 1 else f"all {fresh:,} new papers"
            return f"You have already received {every} {label}."
        if unsent == 1:
            verb = "pass your filters" if not profile.has_interests else "match your interests"
            unseen = "" if fresh == 1 else " that you have not received yet"
            return f"The one new paper {label}{unseen} did not {verb}."
        return f"None of the {unsent:,} new papers {label} {what}."

    # ------------------------------------------------------------ reasons

    def _query(self, text: str) -> _Query:
        q = self._queries.get(text)
        if q is None:
            assert self.day is not None
            index = self.day.index
            surface = index.analyzer.surface(text)
            words, phrases = [], []
            complete = True  # every word of the interest is in some paper today
            for t in dict.fromkeys(index.terms(text, paper=False)):
                j = index.vocab.get(t)
                if j is None:
                    complete = complete and " " in t
                    continue
                if " " not in t:
                    words.append((-float(index.idf[j]), j, surface.get(t, t)))
                    continue
                a, b = t.split(" ")
                parts = frozenset(index.vocab.get(x, -1) for x in (a, b))
                shown = f"{surface.get(a, a)} {surface.get(b, b)}"
                phrases.append((-float(index.idf[j]), j, shown, parts))
            words.sort()
            phrases.sort()
            ranked = tuple((j, w) for _, j, w in words)
            acronyms = self.day.acronyms
            q = _Query(
                text,
                frozenset(j for j, _ in ranked),
                ranked,
                len(text) <= 40,
                tuple((j, w, parts) for _, j, w, parts in phrases),
                self._facets(text),
                frozenset(j for j, w in ranked if acronyms.expansion(w) or _looks_acronym(w)),
                complete,
            )
            self._queries[text] = q
        return q

    def _facets(self, text: str) -> tuple[tuple[str, frozenset[int]], ...]:
        """The interest's facets (or its comma parts) with their word ids, rarest word first."""
        assert self.day is not None
        idf = self.day.index.idf
        parts = named_parts(text, self.day.acronyms)
        found = [(f, ids) for f in parts if (ids := self._word_ids(f))]
        found.sort(key=lambda f: -max(float(idf[j]) for j in f[1]))
        return tuple(found)

    def _word_ids(self, text: str) -> frozenset[int]:
        """Term ids of the words of `text`; empty when one of them is in no paper today."""
        assert self.day is not None
        vocab = self.day.index.vocab
        ids = [vocab.get(t, -1) for t in self.day.index.terms(text, paper=False) if " " not in t]
        return frozenset() if not ids or -1 in ids else frozenset(ids)

    def _terms(self, doc: int) -> frozenset[int]:
        got = self._doc_terms.get(doc)
        if got is None:
            assert self.day is not None
            m = self.day.index.presence
            got = frozenset(m.indices[m.indptr[doc] : m.indptr[doc + 1]].tolist())
            self._doc_terms[doc] = got
        return got

    @staticmethod
    def _query_match(q: _Query, terms: frozenset[int]) -> tuple[str, ...]:
        """The reader's own words only, 3 at most: the interest itself when the paper has all its
        words, else the facets of it the paper covers ("vision transformers"), the two-word
        phrases of it found in the paper ("KV cache") and the acronyms of it the paper uses
        ("MRI"). Never a lone common word ("image", "models")."""
        hit = q.ids & terms
        if not hit:
            return ()
        if q.complete and len(hit) == len(q.ids) and q.whole and len(hit) <= 4:
            return (q.text,)
        shown: list[str] = []
        covered: frozenset[int] = frozenset()
        for facet, ids in q.facets:
            if ids <= terms:
                shown.append(facet)
                covered |= ids
        found = [(p, parts) for j, p, parts in q.phrases if j in terms and not parts <= covered]
        if len(found) == 1:
            shown.append(found[0][0])
        elif found:
            shown += _join_phrases([phrase for phrase, _ in found])
        covered = covered.union(*(parts for _, parts in found))
        shown += [w for j, w in q.ranked if j in hit and j in q.acronyms and j not in covered]
        return tuple(shown[:3])

    def matched(self, profile: Profile, doc: int, like: str = "") -> list[str]:
        """The subscriber's interests (or their words) found in the paper, strongest first."""
        return self._matched([self._query(t) for t, _ in profile.queries], profile, doc, like)

    def _matched(self, queries: list[_Query], profile: Profile, doc: int, like: str) -> list[str]:
        assert self.day is not None
        terms: frozenset[int] | None = None
        out: list[str] = []
        for q in queries:
            hit = q.hits.get(doc)  # (interest, paper) -> its match: shared by every subscriber
            if hit is None:
                if terms is None:
                    terms = self._terms(doc)
                hit = () if q.ids.isdisjoint(terms) else self._query_match(q, terms)
                if self._match_count < REASON_CACHE:
                    q.hits[doc] = hit
                    self._match_count += 1
            if hit:
                out += hit
        if profile.categories:
            cats = self._categories.get(doc)
            if cats is None:
                cats = self._categories[doc] = {c.lower() for c in self.day.papers[doc].categories}
            out += [c for c in profile.categories if c.lower() in cats]
        if like:
            out.append(f"like: {_short(like)}")  # the reader's own liked paper, by title
        return list(dict.fromkeys(out))[:MAX_MATCHED] if len(out) > 1 else out

    def _similar_likes(self, profile: Profile, docs: Sequence[int]) -> list[str]:
        """For each paper: the title of the liked paper it resembles most, if close enough."""
        assert self.day is not None
        liked = [x for x in profile.liked_examples if x in self.day.example_row]
        if not liked or not docs:
            return [""] * len(docs)
        rows = [self.day.example_row[x] for x in liked]
        sims = self.day.example_sim[np.ix_(rows, list(docs))]
        best = sims.argmax(axis=0)
        out = []
        for k, b in enumerate(best.tolist()):
            if sims[b, k] < LIKE_SIMILARITY:
                out.append("")
                continue
            paper = self.examples.get(liked[b])
            if paper is None and liked[b] in self.day.position:
                paper = self.day.papers[self.day.position[liked[b]]]
            out.append(paper.title if paper is not None else liked[b])
        return out

    def _figures(self, doc: int) -> tuple[str, ...]:
        got = self._figure_cache.get(doc)
        if got is None:
            assert self.day is not None
            got = tuple(figures(self.day.papers[doc]))
            rise = self.day.rising.get(doc)
            if rise is not None and self.day.today is not None:
                # "▲ 120, up from 8 yesterday" in place of "▲ 120"
                got = (rise.figure(self.day.today), *(f for f in got if not f.startswith("▲")))
            self._figure_cache[doc] = got
        return got

    def trending_pick(self, doc: int) -> Pick:
        """The same for every subscriber, so built once per paper."""
        got = self._trending_cache.get(doc)
        if got is None:
            assert self.day is not None
            label = "trending today" if self.day.trend[doc] > 0 else "new today"
            got = Pick(
                paper=self.day.papers[doc],
                score=float(self.day.trend[doc]),
                reason=" · ".join((label, *self._figures(doc))),
            )
            self._trending_cache[doc] = got
        return got

    def _reason(
        self, queries: list[_Query], profile: Profile, doc: int, like: str
    ) -> tuple[str, tuple[str, ...]]:
        matched = self._matched(queries, profile, doc, like)
        tail = self._tails.get(doc)
        if tail is None:
            figs = self._figures(doc)
            tail = self._tails[doc] = "".join(" · " + f for f in figs)
        assert self.day is not None
        by = followed_author(self.day.authors, doc, profile.authors) if profile.authors else ""
        if by:
            also = " · matches: " + ", ".join(matched) if matched else ""
            return f"by {by}, whom you follow{also}{tail}", tuple(matched)
        if matched:
            return "matches: " + ", ".join(matched) + tail, tuple(matched)
        if profile.liked and not queries:
            return "related to papers you liked" + tail, ()
        closest = self._closest(queries, doc)
        return (f"related to: {_short(closest)}" if closest else "related") + tail, ()

    def _closest(self, queries: list[_Query], doc: int) -> str:
        """The interest sharing the most words with the paper (the reader's own phrase)."""
        terms = self._terms(doc)
        best = max(queries, key=lambda q: len(q.ids & terms), default=None)
        return best.text if best is not None and best.ids & terms else ""

    def ranking(
        self,
        profile: Profile,
        picks: Sequence[tuple[int, float]],
        trending: Sequence[int],
        fresh: int,
        unsent: int,
    ) -> Ranking:
        """Picks (paper index, score) and trending paper indices, explained."""
        assert self.day is not None
        if not profile.has_interests:
            chosen = tuple(self.trending_pick(d) for d, _ in picks)
        else:
            likes = self._similar_likes(profile, [d for d, _ in picks]) if profile.liked else []
            # Subscribers who share interests share reasons: (interests, paper) is cached.
            base = (profile.queries, profile.categories, bool(profile.liked), profile.authors)
            shared = self._reasons.get(base)
            if shared is None:
                shared = ([self._query(t) for t, _ in profile.queries], {})
                if len(self._reasons) < REASON_CACHE:
                    self._reasons[base] = shared
            queries, reasons = shared
            papers = self.day.papers
            out = []
            for k, (d, s) in enumerate(picks):
                like = likes[k] if likes else ""
                key = (like, d) if like else d
                known = reasons.get(key)
                if known is None:
                    known = reasons[key] = self._reason(queries, profile, d, like)
                out.append(_pick(papers[d], s, known[0], known[1]))
            chosen = tuple(out)
        extra = tuple(self.trending_pick(d) for d in trending)
        reason = "" if chosen else self._empty_reason(profile, int(fresh), int(unsent))
        return Ranking(picks=chosen, trending=extra, empty_reason=reason)

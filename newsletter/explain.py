"""Why a paper was picked ("matches: KV cache, quantization · ▲ 42 · ★ 310"), or why none was."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .models import Paper, Pick
from .trending import figures

if TYPE_CHECKING:
    from .interest_model import Profile
    from .rank import Day, Ranking

MAX_MATCHED = 4
LIKE_SIMILARITY = 0.25  # a liked paper this similar is named in the reason


@dataclass(frozen=True)
class _Query:
    words: tuple[tuple[int, str, float], ...]  # (term id, surface word, idf) of each word
    phrases: frozenset[int]  # bigram term ids


def _short(title: str, limit: int = 50) -> str:
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


class Explainer:
    """Builds `Ranking`s (Picks with reasons) from chosen paper indices."""

    def __init__(self, day: Day | None, examples: Mapping[str, Paper]) -> None:
        self.day = day
        self.examples = examples
        self._queries: dict[str, _Query] = {}
        self._doc_terms: dict[int, frozenset[int]] = {}

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
        if unsent == 0:
            return f"You have already received all {fresh:,} new papers {label}."
        if not profile.has_interests:
            return f"None of the {unsent:,} new papers {label} passed your filters."
        return f"None of the {unsent:,} new papers {label} matched your interests."

    # ------------------------------------------------------------ reasons

    def _query(self, text: str) -> _Query:
        q = self._queries.get(text)
        if q is None:
            assert self.day is not None
            index = self.day.index
            surface = index.analyzer.surface(text)
            words, phrases = [], set()
            for t in dict.fromkeys(index.analyzer.terms(text)):
                j = index.vocab.get(t)
                if j is None:
                    continue
                if " " in t:
                    phrases.add(j)
                else:
                    words.append((j, surface.get(t, t), float(index.idf[j])))
            q = self._queries[text] = _Query(tuple(words), frozenset(phrases))
        return q

    def _terms(self, doc: int) -> frozenset[int]:
        got = self._doc_terms.get(doc)
        if got is None:
            assert self.day is not None
            m = self.day.index.presence
            got = frozenset(m.indices[m.indptr[doc] : m.indptr[doc + 1]].tolist())
            self._doc_terms[doc] = got
        return got

    def matched(self, profile: Profile, doc: int) -> list[str]:
        """The subscriber's interests (or their words) found in the paper, strongest first."""
        assert self.day is not None
        terms = self._terms(doc)
        out: list[str] = []
        for text, _ in profile.queries:
            q = self._query(text)
            hit = [w for w in q.words if w[0] in terms]
            if not hit:
                continue
            if len(hit) == len(q.words) and len(q.words) <= 4 and len(text) <= 40:
                out.append(text)
            else:
                out += [w[1] for w in sorted(hit, key=lambda w: -w[2])[:3]]
        paper = self.day.papers[doc]
        cats = {c.lower() for c in paper.categories}
        out += [c for c in profile.categories if c.lower() in cats]
        like = self._similar_like(profile, doc)
        if like:
            out.append(f"similar to “{_short(like)}”")
        return list(dict.fromkeys(out))[:MAX_MATCHED]

    def _similar_like(self, profile: Profile, doc: int) -> str:
        assert self.day is not None
        rows = [self.day.example_row[x] for x in profile.liked if x in self.day.example_row]
        if not rows:
            return ""
        sims = (self.day.examples[rows] @ self.day.index.unit[doc].T).toarray().ravel()
        best = int(np.argmax(sims))
        if sims[best] < LIKE_SIMILARITY:
            return ""
        pid = [x for x in profile.liked if x in self.day.example_row][best]
        paper = self.examples.get(pid)
        if paper is None and pid in self.day.position:
            paper = self.day.papers[self.day.position[pid]]
        return paper.title if paper is not None else pid

    def pick(self, profile: Profile, doc: int, score: float, trending: bool) -> Pick:
        assert self.day is not None
        paper = self.day.papers[doc]
        matched = () if trending else tuple(self.matched(profile, doc))
        parts: list[str] = []
        if matched:
            parts.append("matches: " + ", ".join(matched))
        elif trending or not profile.has_interests:
            parts.append("trending today" if self.day.trend[doc] > 0 else "new today")
        else:
            parts.append("related to papers you liked" if profile.liked else "related")
        parts += figures(paper)
        return Pick(paper=paper, score=float(score), reason=" · ".join(parts), matched=matched)

    def ranking(
        self,
        profile: Profile,
        picks: Sequence[int],
        trending: Sequence[int],
        final: np.ndarray,
        fresh: int,
        unsent: int,
        trend: np.ndarray,
    ) -> Ranking:
        from .rank import Ranking

        chosen = tuple(self.pick(profile, d, final[d], False) for d in picks)
        extra = tuple(self.pick(profile, d, trend[d], True) for d in trending)
        reason = "" if chosen else self._empty_reason(profile, int(fresh), int(unsent))
        return Ranking(picks=chosen, trending=extra, empty_reason=reason)

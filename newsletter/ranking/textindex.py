"""Text analysis and the sparse term index the ranker scores against.

Words are lower-cased, stop words dropped and (optionally) Snowball-stemmed (agent nouns such
as "optimizer" keep their own term: stemming.py); adjacent words also form bigram terms ("kv
cach"), so a phrase in an interest matches the same phrase in a paper more strongly than its
words scattered apart. Papers are indexed with BM25F weights
(the title is a field with its own weight), and with unit-length tf-idf vectors for
paper-to-paper similarity (liked papers, pseudo-relevance feedback, diversity).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from newsletter.ranking.acronyms import Acronyms, singular
from newsletter.ranking.stemming import Stemmer, american

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")

# English function words plus the boilerplate of abstracts: they carry no topic.
STOPWORDS = frozenset(
    """a about above across after again against all almost along also although always am
    among an and another any are around as at be because been before being below between
    both but by can could did do does doing done down due during each either else etc even
    ever every few for from further had has have having he her here hers him his how however
    i if in into is it its itself just least less let like made make makes many may me might
    more most much must my neither no nor not now of off often on once one only onto or other
    our ours out over own per rather same several she should since so some such than that the
    their them then there these they this those though through thus to too toward towards
    under until up upon us very via was we well were what when where whether which while who
    whom whose why will with within without would yet you your
    paper propose proposed proposes present presents show shows shown introduce introduces
    approach approaches method methods novel new using use used based results result achieve
    achieves achieved demonstrate demonstrates experiments experimental extensive existing
    furthermore moreover specifically significantly significant state art work works study
    various however first second third two three able respectively including include
    includes e g eg ie i.e et al""".split()  # noqa: SIM905
)
# The words of a request around an interest ("Can you send me recent papers about ...",
# "I'm looking for research on ...", "Keep me up to date with ..."): no topic, and as terms
# they matched any abstract saying "recent studies" while a facet made of them ("Looking",
# "Keep me up to date") had to be covered. Dropped from what a reader types (interests,
# searches), not from papers, whose "studies" and "research" are part of their text.
REQUEST_WORDS = frozenset(
    """papers articles article research researches studies recent latest related interested
    interest looking please anything everything something stuff want wants wanted love
    send keep date deal deals dealing read tell give get find great""".split()  # noqa: SIM905
)


def is_request_word(word: str) -> bool:
    """A word of a request, or a contraction of a function word ("i'd", "we're")."""
    low = word.lower()
    return low in REQUEST_WORDS or ("'" in low and low.split("'")[0] in STOPWORDS)


# Word -> term, shared by every analyser with the same setting: stemming is most of the cost of
# indexing, and the web search indexes a fresh set of candidates per query.
_TERM_CACHES: dict[bool, dict[str, str | None]] = {True: {}, False: {}}
_TERM_CACHE_LIMIT = 500_000


class Analyzer:
    """Turns text into terms: stems of content words, and bigrams of adjacent content words."""

    def __init__(self, *, stem: bool = True, bigrams: bool = True) -> None:
        self.stem = stem
        self.bigrams = bigrams
        self._stemmer = Stemmer() if stem else None
        self._cache = _TERM_CACHES[stem]
        if len(self._cache) > _TERM_CACHE_LIMIT:
            self._cache.clear()

    def _norm(self, word: str) -> str | None:
        hit = self._cache.get(word, "")
        if hit != "":
            return hit
        out: str | None
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            out = None
        else:
            w = american(word.replace("'", ""))
            out = self._stemmer.stem(w) if self._stemmer is not None else w
        self._cache[word] = out
        return out

    def term(self, word: str) -> str | None:
        """The term one word becomes (None for a stop word)."""
        return self._norm(word.lower())

    def words(
        self, text: str, *, typed: bool = False, acronyms: Acronyms | None = None
    ) -> list[str | None]:
        """Normalised words in order; None marks a stop word (a phrase break). Text a reader
        `typed` (an interest, a search) also loses the words of a request, and the plural of
        one of `acronyms` typed in lower case ("llms", "cnns") is the acronym, as "LLMs" is
        (`singular` only knows an acronym by its capitals)."""
        found = _WORD.findall(singular(text).lower())
        if not typed:
            return [self._norm(w) for w in found]
        out = [None if is_request_word(w) else self._norm(w) for w in found]
        if acronyms is not None:
            known = acronyms.expansions
            out = [w[:-1] if w and w[-1:] == "s" and w[:-1] in known else w for w in out]
        return out

    def terms(
        self, text: str, *, typed: bool = False, acronyms: Acronyms | None = None
    ) -> list[str]:
        """Unigram terms, then bigram terms ("a b") of adjacent content words."""
        seq = self.words(text, typed=typed, acronyms=acronyms)
        out = [w for w in seq if w is not None]
        if self.bigrams:
            out += [f"{a} {b}" for a, b in itertools.pairwise(seq) if a and b and a != b]
        return out

    def surface(self, text: str) -> dict[str, str]:
        """Map each unigram term of `text` back to the first word it came from (for reasons)."""
        out: dict[str, str] = {}
        for raw in _WORD.findall(singular(text)):
            term = self._norm(raw.lower())
            if term is not None and term not in out:
                out[term] = raw
        return out


@dataclass(frozen=True)
class IndexSettings:
    stem: bool = True
    title_weight: float = 2.0
    fields: bool = True  # False: plain BM25 over title + abstract as one text
    k1: float = 1.2  # term-frequency saturation (1.6 until issue 14's check set chose 1.2)
    b: float = 0.75
    bigram_weight: float = 0.5  # a query bigram counts this much relative to a word
    idf_power: float = 0.0  # query terms weigh idf**idf_power more: rare words lead


TOP_TERMS = 40


def top_k_per_row(row: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest values within each row (entries ordered by row)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    scaled = values / (np.abs(values).max() + 1.0)  # in (-1, 1): row + 1 - scaled sorts by row
    order = np.argsort(row + (1.0 - scaled) * 0.5, kind="stable")
    first = np.searchsorted(row[order], row[order], side="left")
    return order[(np.arange(len(order)) - first) < k]


def _count_matrix(
    docs: Sequence[list[str]], vocab: dict[str, int], grow: bool
) -> sparse.csr_matrix:
    rows: list[int] = []
    cols: list[int] = []
    for i, terms in enumerate(docs):
        # One comprehension per document (a new term takes the next id): twice as fast as
        # a loop with appends, and the search indexes fresh candidates on every query.
        if grow:
            ids = [vocab.setdefault(t, len(vocab)) for t in terms]
        else:
            ids = [j for j in map(vocab.get, terms) if j is not None]
        cols += ids
        rows += [i] * len(ids)
    data = np.ones(len(rows), dtype=np.float32)
    # scipy takes index lists as they are; its stubs ask for arrays.
    m = sparse.coo_matrix(
        (data, (rows, cols)),  # type: ignore[arg-type]
        shape=(len(docs), len(vocab)),
    ).tocsr()
    m.sum_duplicates()
    return m


def _row_scale(m: sparse.csr_matrix, factors: np.ndarray) -> sparse.csr_matrix:
    return sparse.csr_matrix(sparse.diags(factors.astype(np.float32)) @ m)


def _l2_rows(m: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return _row_scale(m, 1.0 / norms)


class TextIndex:
    """BM25F weights and unit tf-idf vectors for one set of papers, over one vocabulary."""

    def __init__(
        self,
        titles: Sequence[str],
        abstracts: Sequence[str],
        settings: IndexSettings,
        acronyms: Acronyms | None = None,
    ) -> None:
        self.settings = settings
        self.acronyms = acronyms
        self._long_terms: dict[str, list[str]] = {}  # long form -> its terms
        # Bigrams are always indexed (negative phrases need them); `bigram_weight` decides
        # whether queries use them.
        self.analyzer = Analyzer(stem=settings.stem, bigrams=True)
        title_terms = [self.terms(t) for t in titles]
        body_terms = [self.terms(a) for a in abstracts]
        self.vocab: dict[str, int] = {}
        title_tf = _count_matrix(title_terms, self.vocab, grow=True)
        body_tf = _count_matrix(body_terms, self.vocab, grow=True)
        v = len(self.vocab)
        # The vocabulary grew past the titles' columns; scipy-stubs types in-place resize as
        # Never (it changes a matrix's shape under its type).
        title_tf.resize((len(titles), v))  # type: ignore[arg-type]
        n = len(titles)
        self.n_docs = n
        presence = ((title_tf + body_tf) > 0).astype(np.float32)
        df = np.asarray(presence.sum(axis=0)).ravel()
        self.df = df
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5)).astype(np.float32)
        self.is_bigram = np.array([" " in t for t in self.vocab], dtype=bool)
        self.bm25 = self._bm25(title_tf, body_tf)
        self.presence = presence.tocsr()
        self.unit = self.tfidf_unit(title_tf + body_tf)
        # Transposes kept ready: every batch of subscribers multiplies by them.
        self.bm25_t = self.bm25.T.tocsr()
        self.unit_t = self.unit.T.tocsr()
        self.top_terms = self._top_terms(TOP_TERMS)

    def terms(self, text: str, *, paper: bool = True) -> list[str]:
        """The analyser's terms; a paper's also hold the other form of each acronym or long
        form it writes (once), so an interest typed either way matches it."""
        if not paper:
            return self.analyzer.terms(text, typed=True, acronyms=self.acronyms)
        out = self.analyzer.terms(text)
        if self.acronyms is not None:
            shorts, longs = self.acronyms.found(text)
            out += [t for t in map(self.analyzer.term, shorts) if t]
            for long in longs:
                got = self._long_terms.get(long)
                if got is None:
                    got = self._long_terms[long] = self.analyzer.terms(long)
                out += got
        return out

    def _top_terms(self, k: int) -> sparse.csr_matrix:
        """Each paper's k heaviest tf-idf words: feedback expansions are drawn from these."""
        m = self.unit
        row = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        keep = top_k_per_row(row, m.data, k)
        return sparse.csr_matrix((m.data[keep], (row[keep], m.indices[keep])), shape=m.shape)

    def _bm25(self, title_tf: sparse.csr_matrix, body_tf: sparse.csr_matrix) -> sparse.csr_matrix:
        s = self.settings

        def norm(tf: sparse.csr_matrix) -> sparse.csr_matrix:
            lengths = np.asarray(tf.sum(axis=1)).ravel()
            avg = max(float(lengths.mean()) if len(lengths) else 1.0, 1e-9)
            return _row_scale(tf, 1.0 / (1.0 - s.b + s.b * lengths / avg + 1e-9))

        if s.fields:
            tf = (norm(title_tf) * s.title_weight + norm(body_tf)).tocsr()
        else:
            tf = norm(title_tf + body_tf).tocsr()
        tf.data = tf.data / (s.k1 + tf.data)  # saturation: each term contributes at most idf
        return sparse.csr_matrix(tf @ sparse.diags(self.idf))

    def tfidf_unit(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Sublinear tf-idf over words (not bigrams), rows scaled to unit length."""
        m = counts.tocsr(copy=True).astype(np.float32)
        m.data = 1.0 + np.log(np.maximum(m.data, 1.0))
        weights = np.where(self.is_bigram, 0.0, self.idf).astype(np.float32)
        m = sparse.csr_matrix(m @ sparse.diags(weights))
        m.eliminate_zeros()
        return _l2_rows(m)

    def vectors(self, texts: Iterable[str]) -> sparse.csr_matrix:
        """Unit tf-idf vectors of outside texts (e.g. liked papers) in this index's vocabulary."""
        terms = [self.terms(t) for t in texts]
        return self.tfidf_unit(_count_matrix(terms, self.vocab, grow=False))

    def query_terms(self, text: str) -> dict[int, float]:
        """Term id -> query weight (repeats add up; bigrams weigh `bigram_weight`)."""
        out: dict[int, float] = {}
        for t in self.terms(text, paper=False):
            j = self.vocab.get(t)
            if j is None:
                continue
            out[j] = out.get(j, 0.0) + (self.settings.bigram_weight if " " in t else 1.0)
        return out

    def query_matrix(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
        """Query weights (one row per text) and each row's best possible score (for scaling).

        The best possible score counts terms that no paper has too: an interest whose words are
        absent today scores low, rather than its one common word being blown up to 1.
        """
        rows, cols, vals = [], [], []
        ideal = np.zeros(len(texts), dtype=np.float32)
        default_idf = math.log1p((self.n_docs + 0.5) / 0.5)
        for i, text in enumerate(texts):
            for t in self.terms(text, paper=False):
                w = self.settings.bigram_weight if " " in t else 1.0
                if w == 0:
                    continue
                j = self.vocab.get(t)
                idf = float(self.idf[j]) if j is not None else default_idf
                w *= idf**self.settings.idf_power
                ideal[i] += w * idf
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(w)
        m = sparse.coo_matrix(
            (np.asarray(vals, dtype=np.float32), (rows, cols)),  # type: ignore[arg-type]
            shape=(len(texts), len(self.vocab)),
        ).tocsr()
        m.sum_duplicates()
        return m, ideal

    def phrase_rows(self, texts: Sequence[str]) -> tuple[sparse.csr_matrix, np.ndarray]:
        """Binary rows of the terms a paper must hold to match each phrase, and how many.

        A one-word phrase needs its word; a longer one needs all of its bigrams (so "reinforcement
        learning" matches that phrase, not every paper with "learning"). A phrase with a term
        no paper has can match nothing.
        """
        rows, cols = [], []
        need = np.zeros(len(texts), dtype=np.float32)
        for i, text in enumerate(texts):
            terms = self.analyzer.terms(text)
            grams = [t for t in terms if " " in t] or terms[:1]
            if not grams:
                need[i] = np.inf
                continue
            unique = set(grams)
            need[i] = len(unique)
            for t in unique:
                j = self.vocab.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        m = sparse.coo_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)),  # type: ignore[arg-type]
            shape=(len(texts), len(self.vocab)),
        ).tocsr()
        return m, need

"""The analyser's fast paths give exactly what their plain versions give, on the corpus's own
text: the stemmer (Snowball in C through PyStemmer) against Snowball's pure-Python English
stemmer, and the acronym definitions found at each parenthesis against the 8-word pattern
tried at every character."""

from __future__ import annotations

import json
import random
import re

import Stemmer
from snowballstemmer.english_stemmer import EnglishStemmer

from newsletter.ranking.acronyms import _DEFINITION, definitions
from tests.test_rank import EVAL

TEXTS = [
    f"{d['title']}\n{d['abstract']}"
    for d in map(json.loads, (EVAL / "corpus.jsonl").read_text().splitlines())
]


def test_the_c_stemmer_stems_every_corpus_word_as_snowballs_python_stemmer_does():
    words = {w.lower() for t in TEXTS for w in re.findall(r"[^\W_]+", t)}
    assert len(words) > 5000
    fast, plain = Stemmer.Stemmer("english"), EnglishStemmer()
    assert [w for w in sorted(words) if fast.stemWord(w) != plain.stemWord(w)] == []


def _plain(text: str) -> list[tuple[str, str]]:
    return [(before, acronym) for before, acronym, _ in _DEFINITION.findall(text)]


def test_definitions_are_found_as_the_pattern_finds_them_at_every_character():
    found = [list(definitions(t)) for t in TEXTS]
    assert found == [_plain(t) for t in TEXTS]
    assert sum(map(len, found)) > 200  # the corpus defines acronyms: the check checks something
    rng = random.Random(7)
    alphabet = list("ab AB CD LLM (s) -'_9 x\n\té,.(")
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert list(definitions(text)) == _plain(text), repr(text)

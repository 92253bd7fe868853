"""The stemmer of the ranker's analyser: Snowball English, except for agent nouns.

Snowball folds "optimizer" into "optim", the stem of "optimization" and "optimizing", and
"regularizer" into "regular": an interest in memory-efficient *optimizers* then matches every
paper that optimises something. Words ending in -izer / -iser (optimizer, tokenizer,
quantizer, regularizer, recogniser) name a thing, not a process, so they keep their own
term, their plural folded into the singular ("optimizers" = "optimizer").

With PyStemmer installed (a dependency), `snowballstemmer.stemmer` is Snowball's own C
stemmer: the same stems (tests/test_rank_analysis.py checks every corpus word) about a hundred
times faster, which was half the cost of indexing a day's papers before a send.
"""

from __future__ import annotations

import re

import snowballstemmer

_AGENT = ("izer", "iser")

# British spellings, as American ones (the stems Snowball gives the two differ: "quantis" and
# "quantiz"), so "quantisation of vision transformers" finds the papers that write
# "quantization", and a British paper is found by an American interest. Only endings that are
# a spelling, never another word: -ise/-isation (optimise, tokenisation; a -wise or noise is
# folded too, alike on both sides), -our after three letters (behaviour, neighbourhood, not
# four, hour or flour), -yse (analyse), and a few -tre, -ogue and -ence words.
_BRITISH = (
    (re.compile(r"(?<=\w{3})is(e|es|ed|ing|ation|ations|er|ers|able)$"), r"iz\1"),
    (re.compile(r"(?<=\w{3})our(s|ed|ing|hood|hoods|able|ite|ites|ful)?$"), r"or\1"),
    (re.compile(r"(?<=\w{2})ys(e|es|ed|ing|er|ers)$"), r"yz\1"),
    (re.compile(r"(cent|met|fib|lit|theat|calib)re(s|d)?$"), r"\1er\2"),
    (re.compile(r"(catal|anal|dial|monol|prol|epil)ogue(s|d)?$"), r"\1og\2"),
    (re.compile(r"^(defen|offen|licen)ce(s|d)?$"), r"\1se\2"),
    (re.compile(r"^programme(s|d)?$"), r"program\1"),
)


# Every ending a pattern above can change: most words end in none of them, and one
# `endswith` costs far less than the patterns (a day's papers hold some 30,000 words).
_ENDINGS = tuple(
    f"{stem}{end}"
    for stem, ends in (
        ("is", ("e", "es", "ed", "ing", "ation", "ations", "er", "ers", "able")),
        ("our", ("", "s", "ed", "ing", "hood", "hoods", "able", "ite", "ites", "ful")),
        ("ys", ("e", "es", "ed", "ing", "er", "ers")),
        ("re", ("", "s", "d")),
        ("ogue", ("", "s", "d")),
        ("ce", ("", "s", "d")),
        ("programme", ("", "s", "d")),
    )
    for end in ends
)


def american(word: str) -> str:
    """A lower-case word in its American spelling ("quantisation" -> "quantization")."""
    if not word.endswith(_ENDINGS):
        return word
    for pattern, repl in _BRITISH:
        word = pattern.sub(repl, word)
    return word


class Stemmer:
    """Snowball English stems, with agent nouns kept whole."""

    def __init__(self) -> None:
        self._snowball = snowballstemmer.stemmer("english")

    def stem(self, word: str) -> str:
        if word.endswith(_AGENT):
            return word
        if word.endswith("s") and word[:-1].endswith(_AGENT):
            return word[:-1]
        out: str = self._snowball.stemWord(word)
        return out

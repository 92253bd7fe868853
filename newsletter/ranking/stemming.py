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

import snowballstemmer

_AGENT = ("izer", "iser")


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

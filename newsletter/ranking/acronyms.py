"""Acronyms and their expansions, learnt from the papers themselves plus a small seed list.

Abstracts define an acronym once ("large language models (LLMs)") and use it after; readers
type either form. `Acronyms.learn` reads every "long form (ACRONYM)" in the titles and
abstracts it is given and keeps the pairs whose initials spell the acronym (word prefixes in
order: "Vision Transformer (ViT)", "mixture of experts (MoE)", "low-rank adaptation (LoRA)"),
so the mapping grows with the corpus. A paper that writes only one form is indexed with the
other too (`found`), so an interest typed either way matches it; the interest itself is
scored as typed, so an acronym and its words do not count twice.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# Pairs every reader expects, before any paper has defined them.
SEED: Mapping[str, str] = {
    "llm": "large language model",
    "vlm": "vision language model",
    "mllm": "multimodal large language model",
    "vit": "vision transformer",
    "moe": "mixture of experts",
    "ptq": "post training quantization",
    "qat": "quantization aware training",
    "gnn": "graph neural network",
    "nas": "neural architecture search",
    "rl": "reinforcement learning",
    "rlhf": "reinforcement learning from human feedback",
    "kv": "key value",
    "lora": "low rank adaptation",
    "peft": "parameter efficient fine tuning",
    "rag": "retrieval augmented generation",
    "snn": "spiking neural network",
    "cnn": "convolutional neural network",
    "ssm": "state space model",
    "asr": "automatic speech recognition",
    "tts": "text to speech",
    "nlp": "natural language processing",
    "gan": "generative adversarial network",
}

# "long form (ACRONYM)": up to 8 words before a parenthesised token with two capitals or more.
_DEFINITION = re.compile(
    r"((?:[A-Za-z][\w'-]*[\s]+){1,8})\(\s*([A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*?)(s?)\s*\)"
)
_PAREN = re.compile(r"\(\s*[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*?s?\s*\)")
_PLURAL = re.compile(r"\b([A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*?)s\b")
_SPLIT = re.compile(r"[\s-]+")
_WORDS = re.compile(r"[^\W_]+")
_CAPS = re.compile(r"\b[A-Z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*\b")
_MINOR = frozenset(
    ["a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"]
)
MAX_PAIRS = 20_000


def singular(word: str) -> str:
    """ "LLMs" -> "LLM", "ViTs" -> "ViT": the plural of an acronym is the acronym."""
    return _PLURAL.sub(r"\1", word)


def definitions(text: str) -> Iterator[tuple[str, str]]:
    """(words before, acronym) of each "long form (ACRONYM)" in `text`: what
    `_DEFINITION.findall` finds, found without trying the 8-word pattern at every character
    (which cost most of indexing a day's papers). The words before a definition lie within
    the 8 whitespace-separated chunks before its parenthesis, so the pattern is tried on
    those alone, from the previous parenthesis on (no definition's words cross one)."""
    floor = 0
    for paren in _PAREN.finditer(text):
        start = paren.start()
        before = text[floor:start]
        head = before.rsplit(None, 8)
        lo = start - len(before) + (len(head[0]) if len(head) == 9 else 0)
        found = _DEFINITION.search(text, lo, paren.end())
        floor = paren.end()
        if found is not None:
            yield found.group(1), found.group(2)


def _spells(letters: str, words: list[str]) -> bool:
    """Do consecutive prefixes of `words` spell `letters` (minor words may give nothing)?"""

    @functools.cache
    def go(i: int, w: int) -> bool:
        if w == len(words):
            return i == len(letters)
        word = words[w]
        if word in _MINOR and go(i, w + 1):
            return True
        for k in range(1, min(len(word), len(letters) - i) + 1):
            if word[:k] != letters[i : i + k]:
                break
            if go(i + k, w + 1):
                return True
        return False

    return go(0, 0)


def _long_form(before: str, acronym: str) -> str | None:
    """The shortest run of words ending `before` whose initials spell `acronym`."""
    letters = re.sub(r"[^a-z]", "", acronym.lower())
    if len(letters) < 2:
        return None
    words = [w for w in _SPLIT.split(before.lower().strip()) if w]
    for start in range(len(words) - 1, -1, -1):
        tail = words[start:]
        if tail[0] in _MINOR or not tail[0][:1].isalpha():
            continue
        if len(tail) >= 2 and tail[0][0] == letters[0] and _spells(letters, tail):
            return " ".join(tail)
    return None


@dataclass
class Acronyms:
    """Acronym (lower case, singular) <-> long form (lower-case words, hyphens as spaces)."""

    expansions: dict[str, str] = field(default_factory=lambda: dict(SEED))

    @classmethod
    def learn(cls, texts: Iterable[str]) -> Acronyms:
        """The seed list plus every valid definition found in `texts` (the most frequent long
        form wins when papers expand one acronym differently)."""
        seen: Counter[tuple[str, str]] = Counter()
        for text in texts:
            if "(" not in text:
                continue
            for before, acronym in definitions(text):
                long = _long_form(before, acronym)
                if long is not None:
                    seen[acronym.lower(), long] += 1
        out = cls()
        for (short, long), _ in seen.most_common(MAX_PAIRS):
            out.expansions.setdefault(short, long)
        return out

    @functools.cached_property
    def contractions(self) -> dict[tuple[str, ...], str]:
        """Long form words (singular) -> acronym."""
        return {_key(long.split()): short for short, long in self.expansions.items()}

    @functools.cached_property
    def longest(self) -> int:
        return max((len(k) for k in self.contractions), default=0)

    def expansion(self, word: str) -> str | None:
        """The long form of `word` if it is a known acronym as a reader writes it: any case for
        the seed list, and with two capitals or more ("ViT") for the learnt pairs."""
        low = singular(word).lower()
        long = self.expansions.get(low)
        if long is None or (sum(c.isupper() for c in word) < 2 and SEED.get(low) != long):
            return None
        return long

    @functools.cached_property
    def _firsts(self) -> frozenset[str]:
        """First words of the long forms, as written (singular or plural, lower case)."""
        return frozenset(w for k in self.contractions for w in (k[0], k[0] + "s"))

    def found(self, text: str) -> tuple[list[str], list[str]]:
        """What a paper's text writes in one form only, in the other form: the acronyms of the
        long forms it spells out ("vision transformers" -> "vit"), and the long forms of the
        acronyms it uses ("ViT" -> "vision transformer"), each once."""
        words = _WORDS.findall(text.lower())
        firsts, contractions, longest = self._firsts, self.contractions, self.longest
        shorts: dict[str, None] = {}
        # Most words start no long form: look only where one could start.
        for i in [i for i, w in enumerate(words) if w in firsts]:
            keys = _key(words[i : i + longest])
            for n in range(len(keys), 1, -1):
                short = contractions.get(keys[:n])
                if short is not None:
                    shorts[short] = None
                    break
        longs: dict[str, None] = {}
        for word in _CAPS.findall(text):
            low = singular(word).lower()
            long = self.expansions.get(low)
            if long is not None and low not in shorts:
                longs[long] = None
        return list(shorts), list(longs)


def _key(words: Iterable[str]) -> tuple[str, ...]:
    """Lower case, an English plural cut ("models" -> "model"): how long forms are compared."""
    return tuple(map(_key_word, words))


@functools.lru_cache(maxsize=1 << 16)
def _key_word(word: str) -> str:
    w = word.lower()
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    return w

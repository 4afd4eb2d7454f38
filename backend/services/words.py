"""Whole words and word prefixes: how texts are cut into words and what a term matches.

A term matches where a word starts with it: "42" finds "42" and "420" but not "142", and
"tom" finds "Tomato" but not "custom". A word is a run of letters, digits and "_" (Python's
Unicode `\\w`), compared lower-cased; the search index stores these words and the snippets
highlight with the same patterns, so what is found and what is marked agree.
"""

import re
from collections import Counter
from functools import lru_cache

MAX_TERM = 64  # longer words are indexed (and looked up) by their first 64 characters
# BM25's constants: term-count saturation, length normalisation, a typical message's words.
K1, B, AVERAGE_WORDS = 1.2, 0.75, 60.0
_WORD = re.compile(r"\w+")


def split(text: str) -> list[str]:
    """The words of a text, lower-cased, each cut to MAX_TERM characters."""
    return [w[:MAX_TERM] for w in _WORD.findall(text.lower())]


def term_counts(text: str) -> tuple[Counter[str], int]:
    """How often each word occurs in the text, and how many words it has."""
    found = split(text)
    return Counter(found), len(found)


def weight(occurrences: int, length: int) -> float:
    """BM25's term part: more occurrences count for less and less, long texts for less."""
    norm = K1 * (1 - B + B * length / AVERAGE_WORDS)
    return occurrences * (K1 + 1) / (occurrences + norm)


def _alternative(term: str) -> str:
    # A term starting with a letter or digit must not follow one; "(" or "#" starts as is.
    return rf"(?<!\w){re.escape(term)}" if term[:1].isalnum() else re.escape(term)


@lru_cache(maxsize=256)
def term_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern finding any of the terms at the start of a word (longest first)."""
    ordered = sorted(terms, key=len, reverse=True)
    return re.compile("|".join(_alternative(t) for t in ordered), re.IGNORECASE)


@lru_cache(maxsize=256)
def word_start_pattern(term: str) -> re.Pattern[str]:
    """Where `term` (a word as `split` gives it) starts a word of a lower-cased text: in
    such a text, `len(findall)` is how many of its `split` words start with the term."""
    return re.compile(rf"(?<!\w){re.escape(term)}")


def word_count(text: str) -> int:
    """How many words `split` finds in the text."""
    return len(_WORD.findall(text))


def counts(text: str, terms: tuple[str, ...]) -> list[int]:
    """How often each term starts a word in the text, in the order of the terms."""
    return [len(term_pattern((term,)).findall(text)) for term in terms]


def matches_all(text: str, terms: tuple[str, ...]) -> bool:
    return all(term_pattern((term,)).search(text) for term in terms)

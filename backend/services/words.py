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
_WORD = re.compile(r"\w+")


def split(text: str) -> list[str]:
    """The words of a text, lower-cased, each cut to MAX_TERM characters."""
    return [w[:MAX_TERM] for w in _WORD.findall(text.lower())]


def term_counts(text: str) -> tuple[Counter[str], int]:
    """How often each word occurs in the text, and how many words it has."""
    found = split(text)
    return Counter(found), len(found)


def _alternative(term: str) -> str:
    # A term starting with a letter or digit must not follow one; "(" or "#" starts as is.
    return rf"(?<!\w){re.escape(term)}" if term[:1].isalnum() else re.escape(term)


@lru_cache(maxsize=256)
def term_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern finding any of the terms at the start of a word (longest first)."""
    ordered = sorted(terms, key=len, reverse=True)
    return re.compile("|".join(_alternative(t) for t in ordered), re.IGNORECASE)


def counts(text: str, terms: tuple[str, ...]) -> list[int]:
    """How often each term starts a word in the text, in the order of the terms."""
    return [len(term_pattern((term,)).findall(text)) for term in terms]


def matches_all(text: str, terms: tuple[str, ...]) -> bool:
    return all(term_pattern((term,)).search(text) for term in terms)

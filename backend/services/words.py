"""Whole words and word prefixes: what a search term matches in a text.

A term matches where a word starts with it: "42" finds "42" and "420" but not "142", and
"tom" finds "Tomato" but not "custom". Case folding is Python's (Unicode). The SQL side only
narrows the rows with a substring `LIKE`; these patterns decide.
"""

import re
from functools import lru_cache


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

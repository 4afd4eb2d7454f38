"""Search for a zero-access user: their own sealed text, opened in this request, searched here.

A zero-access user's words are not in the word index (it would hold them readable with the
master key), so their messages and titles are read, opened with the session's key and matched
in Python with the index's own rules: the same words (`words.split`), the same prefixes, the
same BM25 weights and document frequencies, the same order. Results are the ones the index
gives for the same text; the cost grows with the user's own messages (docs/PRIVACY.md).
"""

import math
import time
from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Conversation, Message
from backend.schemas import SearchResults
from backend.services import words
from backend.services.search import (
    MAX_EXPANSION,
    _hit,
    _title_hits,
    query_terms,
)
from backend.services.search_index import MAX_TERMS_PER_MESSAGE


@dataclass
class _Opened:
    """One message, opened, as the index would hold it."""

    row: Any
    counts: dict[str, int]  # word -> occurrences (at most MAX_TERMS_PER_MESSAGE words)
    length: int


def _opened_messages(*, session: Session, user_id: int) -> list[_Opened]:
    # A Core statement on the connection: the ORM's result machinery costs more than the rows.
    rows = session.connection().execute(
        select(
            Message.id,
            Message.uuid,
            Message.role,
            Message.content,
            Message.created_at,
            Message.conversation_id,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.user_id == user_id)
    )
    opened = []
    for row in rows:
        counted, length = words.term_counts(row.content)
        kept = dict(counted.most_common(MAX_TERMS_PER_MESSAGE))
        opened.append(_Opened(row=row, counts=kept, length=length))
    return opened


def _expansion(term: str, messages: list[_Opened]) -> list[tuple[str, int]]:
    """The words `term` stands for, commonest first, with how many messages hold each."""
    found: Counter[str] = Counter()
    for message in messages:
        found.update(word for word in message.counts if word.startswith(term))
    return sorted(found.items(), key=lambda item: (-item[1], item[0]))


def _ranked(
    *, terms: list[str], messages: list[_Opened], owned: int
) -> tuple[list[tuple[_Opened, float]], int]:
    """The messages holding every term, best first, and how many the index would count."""
    expansions = [_expansion(term, messages) for term in terms]
    if not all(expansions):
        return [], 0
    found = [sum(count for _, count in words_) for words_ in expansions]
    total = max(owned, *found)
    idf = [math.log(1 + (total - df + 0.5) / (df + 0.5)) for df in found]
    single_prefix = len(terms) == 1 and len(expansions[0]) > 1
    allowed = [
        {word for word, _ in (words_[:MAX_EXPANSION] if single_prefix else words_)}
        for words_ in expansions
    ]
    ranked = []
    for message in messages:
        score, holds_all = 0.0, True
        for wanted, weight in zip(allowed, idf, strict=True):
            matched = [w for w in message.counts if w in wanted]
            if not matched:
                holds_all = False
                break
            score += sum(words.weight(message.counts[w], message.length) * weight for w in matched)
        if holds_all:
            ranked.append((message, score))
    ranked.sort(key=lambda hit: (-hit[1], -hit[0].row.id))
    # One prefix standing for several words is counted in (message, word) pairs, as there.
    return ranked, found[0] if single_prefix else len(ranked)


def search(
    *, session: Session, user_id: int, q: str, limit: int, offset: int, include_archived: bool
) -> SearchResults:
    started, terms = time.perf_counter(), query_terms(q)
    phrase = " ".join(terms)
    conversations = {
        c.id: c
        for c in session.scalars(select(Conversation).where(Conversation.user_id == user_id))
    }
    titles = _title_hits(
        session=session,
        user_id=user_id,
        terms=terms,
        include_archived=include_archived,
        narrow_in_sql=False,  # sealed titles: the database sees ciphertext
    )
    everything = _opened_messages(session=session, user_id=user_id)
    in_scope = [
        m
        for m in everything
        if include_archived or not conversations[m.row.conversation_id].archived
    ]
    ranked, matching = _ranked(terms=terms, messages=in_scope, owned=len(everything))
    found: list[tuple[float, float, Any, Any]] = [
        (score, row.updated_at.timestamp(), row, None) for row, score in titles
    ]
    for message, score in ranked[: offset + limit + 20]:
        content = message.row.content
        bonus = 1.0 if len(terms) > 1 and phrase in content.lower() else 0.0
        owner = conversations[message.row.conversation_id]
        hit: Any = SimpleNamespace(  # Message-shaped, for _hit
            uuid=message.row.uuid,
            role=message.row.role,
            content=content,
            created_at=message.row.created_at,
        )
        found.append((score + bonus, message.row.created_at.timestamp(), owner, hit))
    found.sort(key=lambda hit: (hit[3] is not None, -hit[0], -hit[1]))
    page = [
        _hit(owner, message, score, terms) for score, _, owner, message in found[offset:][:limit]
    ]
    took = round((time.perf_counter() - started) * 1000, 2)
    return SearchResults(query=q, data=page, count=len(titles) + matching, took_ms=took)

"""Search for zero-access users: the same matching and ranking as backend/services/search.py,
run in Python over the caller's own content, opened with their key.

Sealed text cannot be searched by SQL, and a keyed index of words would still tell whoever
holds the database which messages share words and how often. So the user's messages and
titles are read (through the sealed columns, opened in this request only) and matched here,
with the SQL search's rules as SQLite runs them: a substring test folded to ASCII lower case,
then every term at a word start, then the same saturated count, length normalisation, phrase
bonus and title boost. The cost is one read of all the user's messages per search (measured in
docs/PRIVACY.md); nothing about the words is stored.
"""

import re
import time
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from backend.models import Conversation, Message
from backend.schemas import SearchHit, SearchResults
from backend.services.search import AVERAGE_LENGTH, K1, TITLE_BOOST, _hit, query_terms, snippet

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)  # SQLite's lower(): ASCII only


def _word_start(term: str) -> re.Pattern[str]:
    # GLOB 'term*' or '*[^a-z0-9_]term*' on the lower-cased text
    return re.compile(rf"(?:^|[^a-z0-9_]){re.escape(term)}", re.DOTALL)


def _matches(lowered: str, terms: list[str], starts: list[re.Pattern[str] | None]) -> bool:
    for term in terms:  # loops, not all(): this runs once per message of the user
        if term not in lowered:
            return False
    for start in starts:  # noqa: SIM110 - the same reason
        if start is not None and start.search(lowered) is None:
            return False
    return True


def _score(text: str, lowered: str, terms: list[str], phrase: str) -> float:
    norm = K1 * (0.25 + 0.75 * float(len(text)) / AVERAGE_LENGTH)
    spaced, score = " " + lowered, 0.0
    for term in terms:
        after_space = len(spaced) - len(spaced.replace(" " + term, ""))
        counted = float(after_space) / (len(term) + 1)
        tf = 1.0 if counted < 1.0 else counted
        score = score + tf * (K1 + 1) / (tf + norm)
    if len(terms) > 1:
        score = score + (1.0 if phrase in lowered else 0.0)
    return score


def search(
    *, session: Session, user_id: int, q: str, limit: int, offset: int, include_archived: bool
) -> SearchResults:
    started, terms = time.perf_counter(), query_terms(q)
    phrase = " ".join(terms)
    starts = [_word_start(term) if term[:1].isalnum() else None for term in terms]
    scope = Conversation.user_id == user_id
    if not include_archived:
        scope = scope & Conversation.archived.is_(False)
    conversations = session.scalars(select(Conversation).where(scope)).all()
    titles = []
    for conversation in conversations:
        title = conversation.title or ""
        lowered = _lower(title)
        if _matches(lowered, terms, starts):
            titles.append((conversation, _score(title, lowered, terms, phrase) + TITLE_BOOST))
    titles.sort(key=lambda found: (-found[1], -found[0].updated_at.timestamp()))
    hits: list[SearchHit] = []
    for conversation, score in titles:
        plain, spans, marked = snippet(conversation.title or "", terms)
        hits.append(_hit("title", conversation, None, plain, spans, marked, score))
    by_id = {conversation.id: conversation for conversation in conversations}
    messages = _message_hits(
        session=session, scope=scope, terms=terms, starts=starts, phrase=phrase, by_id=by_id
    )
    for message, owner, score in messages[: offset + limit]:
        plain, spans, marked = snippet(message.content, terms)
        hits.append(_hit("message", owner, message, plain, spans, marked, score))
    hits.sort(key=lambda hit: (-hit.score, -hit.created_at.timestamp()))
    count = len(titles) + len(messages)
    took = round((time.perf_counter() - started) * 1000, 2)
    return SearchResults(query=q, data=hits[offset : offset + limit], count=count, took_ms=took)


def _message_hits(
    *,
    session: Session,
    scope: ColumnElement[bool],
    terms: list[str],
    starts: list[re.Pattern[str] | None],
    phrase: str,
    by_id: dict[int, Conversation],
) -> list[tuple[Any, Conversation, float]]:  # Any: a Message-shaped namespace
    # Titles come from the conversations already read: opened once each, not once per message.
    # A Core statement on the connection: the ORM's result machinery costs more than the rows.
    rows = (
        session.connection()
        .execute(
            select(
                Message.id,
                Message.uuid,
                Message.role,
                Message.content,
                Message.created_at,
                Message.conversation_id,
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(scope)
        )
        .all()
    )
    found: list[tuple[SimpleNamespace, Conversation, float, int]] = []
    for row in rows:
        lowered = _lower(row.content)
        if not _matches(lowered, terms, starts):
            continue
        owner = by_id[row.conversation_id]
        message = SimpleNamespace(
            uuid=row.uuid, role=row.role, content=row.content, created_at=row.created_at
        )
        found.append((message, owner, _score(row.content, lowered, terms, phrase), row.id))
    found.sort(key=lambda hit: (-hit[2], -hit[0].created_at.timestamp(), -hit[3]))
    return [(message, owner, score) for message, owner, score, _id in found]

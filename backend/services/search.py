"""Search in one user's message contents and conversation titles, ranked, with snippets.

No FTS5 on deltadb (virtual tables are not in its change log), and a maintained inverted
index would multiply the encrypted rows written per answer. The replica is in memory, so one
scan is fast (see docs/BACKEND.md for the figure): a substring `LIKE` per term narrows the rows
cheaply, then a word-start test (`GLOB` on SQLite and deltadb, a regular expression on
PostgreSQL) keeps those where every term starts a word ("42" finds "420", never "142"). The
score is a BM25-like saturated count of word starts with length normalisation, a bonus when
the whole phrase occurs, and titles above messages. Only rows of the caller's own
conversations are ever read. Case folding is ASCII (SQLite's `lower`).
"""

import html
import re
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Literal

from sqlalchemy import (
    Float,
    Row,
    SQLColumnExpression,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.core import sealing
from backend.models import Conversation, Message
from backend.schemas import SearchHit, SearchResults
from backend.services import words
from backend.services.errors import BadRequest

MAX_TERMS = 8
SNIPPET_CHARS = 160
TITLE_BOOST = 3.0
K1, AVERAGE_LENGTH = 1.2, 400.0


def query_terms(q: str) -> list[str]:
    words = [w.strip("\"'“”‘’.,;:!?()[]{}").lower() for w in q.split()]
    terms = list(dict.fromkeys(w for w in words if w))
    if not terms:
        raise BadRequest("Give at least one word to search for")
    return terms[:MAX_TERMS]


def _score(text: SQLColumnExpression[str], terms: list[str], phrase: str) -> ColumnElement[float]:
    lowered, length = func.lower(text), cast(func.length(text), Float)
    spaced = literal(" ") + lowered
    norm = K1 * (0.25 + 0.75 * length / AVERAGE_LENGTH)
    score: ColumnElement[float] = literal(0.0)
    for term in terms:
        # Word starts after a space (or at the start); at least one, which the filter ensured
        # (a word after "(" or a line break is found, just not counted twice).
        after_space = func.length(spaced) - func.length(func.replace(spaced, " " + term, ""))
        counted = cast(after_space, Float) / (len(term) + 1)
        tf = case((counted < 1.0, 1.0), else_=counted)
        score = score + tf * (K1 + 1) / (tf + norm)
    if len(terms) > 1:
        # LIKE, not instr(): PostgreSQL has no instr.
        phrase_found = lowered.contains(phrase, autoescape=True)
        score = score + case((phrase_found, 1.0), else_=0.0)
    return score


def _glob_literal(term: str) -> str:
    # GLOB's wildcards and sets, escaped by putting them in a set of their own.
    return re.sub(r"([*?\[])", r"[\1]", term)


def _starts_a_word(
    text: SQLColumnExpression[str], term: str, *, sqlite_like: bool
) -> ColumnElement[bool]:
    if not term[:1].isalnum():  # "#42" or "(x": no word boundary to ask for
        return true()
    if sqlite_like:
        lowered = func.lower(text)
        glob = _glob_literal(term)
        return or_(lowered.op("GLOB")(f"{glob}*"), lowered.op("GLOB")(f"*[^a-z0-9_]{glob}*"))
    return text.regexp_match(rf"(^|[^[:alnum:]_]){re.escape(term)}", flags="i")


def _matches_all(
    text: SQLColumnExpression[str], terms: list[str], *, sqlite_like: bool
) -> ColumnElement[bool]:
    # SQLite's LIKE is ASCII case-insensitive and needs no lower-cased copy of each row, so it
    # narrows first (AND is evaluated in order); the word-start test runs on what is left.
    narrow = (
        [text.contains(term, autoescape=True) for term in terms]
        if sqlite_like
        else [text.icontains(term, autoescape=True) for term in terms]
    )
    exact = [_starts_a_word(text, term, sqlite_like=sqlite_like) for term in terms]
    return and_(*narrow, *exact)


def snippet(text: str, terms: list[str]) -> tuple[str, list[tuple[int, int]], str]:
    """A window of text around the first match: (plain, [start, end) highlights, HTML)."""
    pattern = words.term_pattern(tuple(terms))
    first = pattern.search(text)
    start = max(0, (first.start() if first else 0) - SNIPPET_CHARS // 3)
    if start:
        start = text.find(" ", start, start + 20) + 1 or start
    end = min(len(text), start + SNIPPET_CHARS)
    body = " ".join(text[start:end].split(" "))
    plain = ("…" if start else "") + body + ("…" if end < len(text) else "")
    spans = [(m.start(), m.end()) for m in pattern.finditer(plain)]
    pieces, last = [], 0
    for begin, stop in spans:
        pieces += [html.escape(plain[last:begin]), f"<mark>{html.escape(plain[begin:stop])}</mark>"]
        last = stop
    return plain, spans, "".join(pieces) + html.escape(plain[last:])


def _scope(user_id: int, include_archived: bool) -> ColumnElement[bool]:
    own = Conversation.user_id == user_id
    return own if include_archived else and_(own, Conversation.archived.is_(False))


def _message_hits(
    *, session: Session, scope: ColumnElement[bool], terms: list[str], phrase: str, top: int
) -> Sequence[Row[Message, str, str | None, bool, float, int]]:
    like = session.get_bind().dialect.name != "postgresql"
    score = _score(Message.content, terms, phrase).label("score")
    statement = (
        select(Message, Conversation.uuid, Conversation.title, Conversation.archived, score)
        .add_columns(func.count().over().label("total"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(scope, _matches_all(Message.content, terms, sqlite_like=like))
        .order_by(score.desc(), Message.created_at.desc(), Message.id.desc())
        .limit(top)
    )
    return session.execute(statement).all()


def _title_hits(
    *, session: Session, scope: ColumnElement[bool], terms: list[str], phrase: str
) -> Sequence[Row[Conversation, float]]:
    like = session.get_bind().dialect.name != "postgresql"
    title = func.coalesce(Conversation.title, "")
    score = (_score(title, terms, phrase) + TITLE_BOOST).label("score")
    statement = (
        select(Conversation, score)
        .where(scope, _matches_all(title, terms, sqlite_like=like))
        .order_by(score.desc(), Conversation.updated_at.desc())
    )
    return session.execute(statement).all()


def search(
    *, session: Session, user_id: int, q: str, limit: int, offset: int, include_archived: bool
) -> SearchResults:
    if sealing.current() is not None:  # zero-access: sealed text is searched in Python
        from backend.services import sealed_search

        return sealed_search.search(
            session=session,
            user_id=user_id,
            q=q,
            limit=limit,
            offset=offset,
            include_archived=include_archived,
        )
    started, terms = time.perf_counter(), query_terms(q)
    phrase, scope = " ".join(terms), _scope(user_id, include_archived)
    hits: list[SearchHit] = []
    for conversation, score in _title_hits(
        session=session, scope=scope, terms=terms, phrase=phrase
    ):
        plain, spans, marked = snippet(conversation.title or "", terms)
        hits.append(_hit("title", conversation, None, plain, spans, marked, score))
    rows = _message_hits(
        session=session, scope=scope, terms=terms, phrase=phrase, top=offset + limit
    )
    for message, uuid, title, archived, score, _total in rows:
        plain, spans, marked = snippet(message.content, terms)
        owner = SimpleNamespace(uuid=uuid, title=title, archived=archived)
        hits.append(_hit("message", owner, message, plain, spans, marked, score))
    hits.sort(key=lambda hit: (-hit.score, -hit.created_at.timestamp()))
    count = len(hits) - len(rows) + (rows[0].total if rows else 0)
    took = round((time.perf_counter() - started) * 1000, 2)
    return SearchResults(query=q, data=hits[offset : offset + limit], count=count, took_ms=took)


def _hit(
    kind: Literal["message", "title"],
    conversation: Conversation | SimpleNamespace,
    message: Message | None,
    plain: str,
    spans: list[tuple[int, int]],
    marked: str,
    score: float,
) -> SearchHit:
    return SearchHit(
        kind=kind,
        conversation_uuid=conversation.uuid,
        conversation_title=conversation.title,
        archived=bool(conversation.archived),
        message_uuid=message.uuid if message else None,
        role=message.role if message else None,
        snippet=plain,
        highlights=spans,
        snippet_html=marked,
        score=round(float(score), 4),
        created_at=message.created_at if message else conversation.updated_at,
    )

"""Search in one user's message contents and conversation titles, ranked, with snippets.

Messages are found through the search index (`search_index.py`: one row per distinct word of
each message, with the owner's id), not by reading every message: each query word is a range
of the (user, term) index ("tom" reads the terms from "tom" up to the last word starting with
it), so a word starts where a term does ("42" finds "420", never "142"). Every word must occur;
the score is BM25 (inverse document frequency from the index, saturated term counts, length
normalisation), with a bonus when the whole phrase occurs and titles above messages. Only the
best `offset + limit` messages are read, for their snippets. Titles are few (one per chat) and
are matched by a scan. Only the caller's own rows are ever read.
"""

import html
import math
import time
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Float, and_, cast, func, literal, select, union_all
from sqlalchemy.orm import Session

from backend.models import Conversation, Message, SearchTerm
from backend.schemas import SearchHit, SearchResults
from backend.services import search_index, words  # noqa: F401 - the index's write hook
from backend.services.errors import BadRequest

MAX_TERMS = 8
SNIPPET_CHARS = 160
TITLE_BOOST = 3.0
K1, B, AVERAGE_WORDS = 1.2, 0.75, 60.0


def query_terms(q: str) -> list[str]:
    """The query's words as the index holds them (lower-cased, cut to 64 characters)."""
    terms = list(dict.fromkeys(words.split(q)))
    if not terms:
        raise BadRequest("Give at least one word (letters or digits) to search for")
    return terms[:MAX_TERMS]


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


def _term_range(term: str, *, like: bool):  # noqa: ANN202 - a SQL expression
    column = SearchTerm.__table__.c.term
    if like:  # SQLite compares bytes: every word starting with `term` sorts in this range
        return and_(column >= term, column < term + "\U0010ffff")
    return column.startswith(term, autoescape=True)


def _idf(*, session: Session, user_id: int, terms: list[str], like: bool) -> list[float]:
    index = SearchTerm.__table__
    owned = select(func.count(Message.id)).join(Conversation).where(Conversation.user_id == user_id)
    total = session.scalar(owned) or 0
    weights = []
    for term in terms:
        found = (
            session.scalar(
                select(func.count()).where(index.c.user_id == user_id, _term_range(term, like=like))
            )
            or 0
        )
        weights.append(math.log(1 + (total - found + 0.5) / (found + 0.5)))
    return weights


def _ranked_messages(  # noqa: ANN202 - a SQL statement
    *, session: Session, user_id: int, terms: list[str], include_archived: bool, top: int
):
    """The `top` message ids holding every term, best first, with their BM25 score and the
    number of matching messages; read from the index alone."""
    index = SearchTerm.__table__
    like = session.get_bind().dialect.name != "postgresql"
    weights = _idf(session=session, user_id=user_id, terms=terms, like=like)
    archived = select(Conversation.id).where(
        Conversation.user_id == user_id, Conversation.archived.is_(True)
    )
    parts = []
    for i, (term, weight) in enumerate(zip(terms, weights, strict=True)):
        part = select(
            index.c.message_id,
            literal(i).label("i"),
            (literal(weight) * index.c.occurrences).label("weighted"),
            index.c.occurrences,
            index.c.words,
        ).where(index.c.user_id == user_id, _term_range(term, like=like))
        if not include_archived:
            part = part.where(index.c.conversation_id.not_in(archived))
        parts.append(part)
    hits = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    norm = K1 * (1 - B + B * cast(hits.c.words, Float) / AVERAGE_WORDS)
    score = func.sum(hits.c.weighted * (K1 + 1) / (hits.c.occurrences + norm)).label("score")
    statement = (
        select(hits.c.message_id, score, func.count().over().label("total"))
        .group_by(hits.c.message_id)
        .order_by(score.desc(), hits.c.message_id.desc())
        .limit(top)
    )
    if len(terms) > 1:
        statement = statement.having(func.count(func.distinct(hits.c.i)) == len(terms))
    return session.execute(statement).all()


def _message_hits(
    *, session: Session, user_id: int, terms: list[str], include_archived: bool, top: int
) -> tuple[list[tuple], int]:
    """[(message, conversation uuid, title, archived, score)] best first, and how many match."""
    ranked = _ranked_messages(
        session=session,
        user_id=user_id,
        terms=terms,
        include_archived=include_archived,
        top=top,
    )
    if not ranked:
        return [], 0
    statement = (
        select(Message, Conversation.uuid, Conversation.title, Conversation.archived)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id.in_([row.message_id for row in ranked]))
    )
    found = {row[0].id: tuple(row) for row in session.execute(statement)}
    hits = [(*found[r.message_id], r.score) for r in ranked if r.message_id in found]
    return hits, ranked[0].total


def _bm25(occurrences: float, length: int) -> float:
    norm = K1 * (1 - B + B * length / AVERAGE_WORDS)
    return occurrences * (K1 + 1) / (occurrences + norm)


def _title_hits(*, session: Session, user_id: int, terms: list[str], include_archived: bool):  # noqa: ANN202
    """[(conversation row, score)] whose title holds every term at a word start."""
    statement = select(
        Conversation.uuid, Conversation.title, Conversation.archived, Conversation.updated_at
    ).where(Conversation.user_id == user_id, Conversation.title.is_not(None))
    if not include_archived:
        statement = statement.where(Conversation.archived.is_(False))
    found = []
    for row in session.execute(statement):
        title_words = words.split(row.title)
        counted = [sum(w.startswith(t) for w in title_words) for t in terms]
        if all(counted):
            score = TITLE_BOOST + sum(_bm25(n, len(title_words)) for n in counted)
            found.append((row, score))
    return found


def search(
    *, session: Session, user_id: int, q: str, limit: int, offset: int, include_archived: bool
) -> SearchResults:
    started, terms = time.perf_counter(), query_terms(q)
    phrase = " ".join(terms)
    titles = _title_hits(
        session=session, user_id=user_id, terms=terms, include_archived=include_archived
    )
    # A few more messages than asked for, so the phrase bonus can lift one into the page.
    messages, matching = _message_hits(
        session=session,
        user_id=user_id,
        terms=terms,
        include_archived=include_archived,
        top=offset + limit + 20,
    )
    found: list[tuple[float, float, Any, Any]] = [
        (score, row.updated_at.timestamp(), row, None) for row, score in titles
    ]
    for message, uuid, title, archived, score in messages:
        bonus = 1.0 if len(terms) > 1 and phrase in message.content.lower() else 0.0
        owner = SimpleNamespace(uuid=uuid, title=title, archived=archived)
        found.append((score + bonus, message.created_at.timestamp(), owner, message))
    found.sort(key=lambda hit: (-hit[0], -hit[1]))
    page = [
        _hit(owner, message, score, terms) for score, _, owner, message in found[offset:][:limit]
    ]
    took = round((time.perf_counter() - started) * 1000, 2)
    return SearchResults(query=q, data=page, count=len(titles) + matching, took_ms=took)


def _hit(conversation: Any, message: Message | None, score: float, terms: list[str]) -> SearchHit:
    # Snippets only for the page returned: the candidates beyond it cost nothing more.
    plain, spans, marked = snippet(message.content if message else conversation.title, terms)
    return SearchHit(
        kind="message" if message else "title",
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

"""Search in one user's message contents and conversation titles, ranked, with snippets.

No FTS5 on deltadb (virtual tables are not in its change log), and a maintained inverted
index would multiply the encrypted rows written per answer. The replica is in memory, so one
scan with `instr(lower(...))` per term is fast (see docs/BACKEND.md for the figure): every
term must occur; the score is a BM25-like saturated term frequency with length
normalisation, a bonus when the whole phrase occurs, and titles above messages. Only rows of
the caller's own conversations are ever read. Case folding is ASCII (SQLite's `lower`).
"""

import html
import re
import time
from types import SimpleNamespace

from sqlalchemy import Float, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from backend.models import Conversation, Message
from backend.schemas import SearchHit, SearchResults
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


def _score(text, terms: list[str], phrase: str):  # noqa: ANN001, ANN202 - SQL expressions
    lowered, length = func.lower(text), cast(func.length(text), Float)
    norm = K1 * (0.25 + 0.75 * length / AVERAGE_LENGTH)
    score = literal(0.0)
    for term in terms:
        tf = cast(func.length(lowered) - func.length(func.replace(lowered, term, "")), Float)
        tf = tf / len(term)
        score = score + tf * (K1 + 1) / (tf + norm)
    if len(terms) > 1:
        score = score + case((func.instr(lowered, phrase) > 0, 1.0), else_=0.0)
    return score


def _matches_all(text, terms: list[str], *, sqlite_like: bool):  # noqa: ANN001, ANN202
    # SQLite's LIKE is ASCII case-insensitive and needs no lower-cased copy of each row,
    # which makes the scan about twice as fast as instr(lower(...)); elsewhere ILIKE.
    if sqlite_like:
        return and_(*(text.contains(term, autoescape=True) for term in terms))
    return and_(*(text.icontains(term, autoescape=True) for term in terms))


def snippet(text: str, terms: list[str]) -> tuple[str, list[tuple[int, int]], str]:
    """A window of text around the first match: (plain, [start, end) highlights, HTML)."""
    pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.I)
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


def _scope(user_id: int, include_archived: bool):  # noqa: ANN202
    own = Conversation.user_id == user_id
    return own if include_archived else and_(own, Conversation.archived.is_(False))


def _message_hits(*, session: Session, scope, terms: list[str], phrase: str, top: int):  # noqa: ANN001
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


def _title_hits(*, session: Session, scope, terms: list[str], phrase: str):  # noqa: ANN001
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


def _hit(kind, conversation, message, plain, spans, marked, score) -> SearchHit:  # noqa: ANN001
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

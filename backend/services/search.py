"""Search in one user's message contents and conversation titles, ranked, with snippets.

No FTS5 on deltadb (virtual tables are not in its change log), and a maintained inverted
index would multiply the encrypted rows written per answer. The replica is in memory, so one
scan with a substring `LIKE` per term narrows the rows, and `words` keeps those where every
term starts a word ("42" finds "420", never "142"). The score is a BM25-like saturated
count of word-start matches with length normalisation, a bonus when the whole phrase occurs,
and titles above messages. Only rows of the caller's own conversations are ever read.
"""

import html
import time
from types import SimpleNamespace

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

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


def _score(text: str, terms: tuple[str, ...], phrase: str) -> float:
    """BM25-like: saturated word-start counts, length-normalised, plus a phrase bonus."""
    norm = K1 * (0.25 + 0.75 * len(text) / AVERAGE_LENGTH)
    score = sum(tf * (K1 + 1) / (tf + norm) for tf in words.counts(text, terms))
    if len(terms) > 1 and phrase in text.lower():
        score += 1.0
    return score


def _narrowed(text, terms: tuple[str, ...], *, sqlite_like: bool):  # noqa: ANN001, ANN202
    # Only narrows the rows (a substring in SQL); words.matches_all then decides. SQLite's
    # LIKE is ASCII case-insensitive and needs no lower-cased copy of each row; elsewhere ILIKE.
    if sqlite_like:
        return and_(*(text.contains(term, autoescape=True) for term in terms))
    return and_(*(text.icontains(term, autoescape=True) for term in terms))


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


def _scope(user_id: int, include_archived: bool):  # noqa: ANN202
    own = Conversation.user_id == user_id
    return own if include_archived else and_(own, Conversation.archived.is_(False))


def _sqlite_like(session: Session) -> bool:
    return session.get_bind().dialect.name != "postgresql"


def _ranked_messages(
    *,
    session: Session,
    scope,
    terms: tuple[str, ...],
    phrase: str,  # noqa: ANN001
) -> list[tuple[float, int]]:
    """(score, message id) of every message matching all terms, best first."""
    statement = (
        select(Message.id, Message.content, Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(scope, _narrowed(Message.content, terms, sqlite_like=_sqlite_like(session)))
    )
    scored = [
        (_score(content, terms, phrase), created_at, message_id)
        for message_id, content, created_at in session.execute(statement)
        if words.matches_all(content, terms)
    ]
    scored.sort(key=lambda row: (-row[0], -row[1].timestamp(), -row[2]))
    return [(score, message_id) for score, _, message_id in scored]


def _message_rows(*, session: Session, ids: list[int]):  # noqa: ANN202
    statement = (
        select(Message, Conversation.uuid, Conversation.title, Conversation.archived)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id.in_(ids))
    )
    return {row[0].id: row for row in session.execute(statement)}


def _title_hits(*, session: Session, scope, terms: tuple[str, ...], phrase: str):  # noqa: ANN001, ANN202
    title = func.coalesce(Conversation.title, "")
    statement = select(Conversation).where(
        scope, _narrowed(title, terms, sqlite_like=_sqlite_like(session))
    )
    found = [
        (conversation, _score(conversation.title or "", terms, phrase) + TITLE_BOOST)
        for conversation in session.scalars(statement)
        if words.matches_all(conversation.title or "", terms)
    ]
    found.sort(key=lambda row: (-row[1], -row[0].updated_at.timestamp()))
    return found


def search(
    *, session: Session, user_id: int, q: str, limit: int, offset: int, include_archived: bool
) -> SearchResults:
    started, terms = time.perf_counter(), tuple(query_terms(q))
    phrase, scope = " ".join(terms), _scope(user_id, include_archived)
    hits: list[SearchHit] = []
    for conversation, score in _title_hits(
        session=session, scope=scope, terms=terms, phrase=phrase
    ):
        plain, spans, marked = snippet(conversation.title or "", list(terms))
        hits.append(_hit("title", conversation, None, plain, spans, marked, score))
    ranked = _ranked_messages(session=session, scope=scope, terms=terms, phrase=phrase)
    top = ranked[: offset + limit]
    rows = _message_rows(session=session, ids=[message_id for _, message_id in top])
    for score, message_id in top:
        message, uuid, title, archived = rows[message_id]
        plain, spans, marked = snippet(message.content, list(terms))
        owner = SimpleNamespace(uuid=uuid, title=title, archived=archived)
        hits.append(_hit("message", owner, message, plain, spans, marked, score))
    hits.sort(key=lambda hit: (-hit.score, -hit.created_at.timestamp()))
    count = len(hits) - len(top) + len(ranked)
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

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
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, func, intersect, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from backend.core import sealing
from backend.models import Conversation, Message, SearchTerm
from backend.schemas import SearchHit, SearchResults
from backend.services import search_index, words  # noqa: F401 - the index's write hook
from backend.services.errors import BadRequest

MAX_TERMS = 8
SNIPPET_CHARS = 160
TITLE_BOOST = 3.0
OWNED_TTL_S = 60.0
MAX_EXPANSION = 20  # the words a one-term prefix query reads, commonest first
_OWNED: dict[int, tuple[float, int]] = {}  # user id -> (when counted, messages)


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


def _term_range(term: str, *, like: bool) -> ColumnElement[bool]:
    column = SearchTerm.__table__.c.term
    if like:  # SQLite compares bytes: every word starting with `term` sorts in this range
        return and_(column >= term, column < term + "\U0010ffff")
    return column.startswith(term, autoescape=True)


def _owned_messages(session: Session, user_id: int) -> int:
    """How many messages the user has (BM25's N), counted at most once a minute per user:
    it only weighs the query's words against each other, so a recent count is enough."""
    now = time.monotonic()
    cached = _OWNED.get(user_id)
    if cached is None or now - cached[0] > OWNED_TTL_S:
        owned = select(func.count(Message.id)).join(Conversation)
        cached = (now, session.scalar(owned.where(Conversation.user_id == user_id)) or 0)
        _OWNED[user_id] = cached
    return cached[1]


def forget_counts() -> None:
    """Forget the cached message counts (when the tables were emptied under them)."""
    _OWNED.clear()


def _in_range(*, user_id: int, term: str, like: bool, archived: Any) -> ColumnElement[bool]:
    index = SearchTerm.__table__
    where = [index.c.user_id == user_id, _term_range(term, like=like)]
    if archived is not None:
        where.append(index.c.conversation_id.not_in(archived))
    return and_(*where)


def _ranked_messages(
    *, session: Session, user_id: int, terms: list[str], include_archived: bool, top: int
) -> tuple[Sequence[Any], int]:
    """The `top` message ids holding every term, best first, with their BM25 score, and the
    number of messages holding every term; read from the index alone."""
    index = SearchTerm.__table__
    like = session.get_bind().dialect.name != "postgresql"
    archived = None
    if not include_archived:
        archived = select(Conversation.id).where(
            Conversation.user_id == user_id, Conversation.archived.is_(True)
        )
    ranges = [_in_range(user_id=user_id, term=t, like=like, archived=archived) for t in terms]
    # Per term: the words of the index it stands for, commonest first, with their counts.
    expansions = [
        session.execute(
            select(index.c.term, func.count().label("found"))
            .where(r)
            .group_by(index.c.term)
            .order_by(func.count().desc(), index.c.term)
        ).all()
        for r in ranges
    ]
    if not all(expansions):  # a word nobody wrote: nothing to rank
        return [], 0
    found = [sum(row.found for row in words_) for words_ in expansions]
    # The count may be a minute old: never below what the index just showed.
    total = max(_owned_messages(session, user_id), *found)
    weights = [math.log(1 + (total - df + 0.5) / (df + 0.5)) for df in found]
    if all(len(words_) == 1 for words_ in expansions):  # each term is one word of the index
        return _rank_words(
            session=session,
            user_id=user_id,
            found=[
                (words_[0].found, words_[0].term, weight)
                for words_, weight in zip(expansions, weights, strict=True)
            ],
            archived=archived,
            top=top,
        )
    if len(terms) == 1:
        return _rank_prefix(
            session=session, where=ranges[0], words_=expansions[0], weight=weights[0], top=top
        )
    return _rank_prefixes(session=session, ranges=ranges, weights=weights, top=top)


def _rank_prefix(
    *, session: Session, where: Any, words_: Sequence[Any], weight: float, top: int
) -> tuple[Sequence[Any], int]:
    """One prefix standing for several words ("wa": was, water, way): each word's best
    messages by weight (`top` each, from its range of the index), merged; a message holding several
    of the words adds their weights. Only the commonest MAX_EXPANSION words are read (a
    one-letter prefix stands for thousands). The count is of (message, word) pairs: an upper
    bound on the messages, exact unless a message holds several of the words."""
    index = SearchTerm.__table__
    scores: dict[int, float] = {}
    for word in words_[:MAX_EXPANSION]:
        best = session.execute(
            select(index.c.message_id, index.c.weight)
            .where(where, index.c.term == word.term)
            .order_by(index.c.weight.desc(), index.c.message_id.desc())
            .limit(top)
        )
        for message_id, word_weight in best:
            scores[message_id] = scores.get(message_id, 0.0) + word_weight * weight
    ranked = sorted(scores.items(), key=lambda item: (-item[1], -item[0]))[:top]
    count = sum(word.found for word in words_)
    return [SimpleNamespace(message_id=m, score=score) for m, score in ranked], count


def _rank_words(
    *, session: Session, user_id: int, found: list[tuple[int, str, float]], archived: Any, top: int
) -> tuple[Sequence[Any], int]:
    """Whole words: the rarest one's messages, each looked up in the other words' ranges
    (by message id); a single word's best messages are its range of the index sorted by
    weight (SQLite keeps only the `top` best while it reads)."""
    index = SearchTerm.__table__
    found = sorted(found)  # the rarest word first: it drives the lookups
    first = index.alias("first")
    where = [first.c.user_id == user_id, first.c.term == found[0][1]]
    if archived is not None:
        where.append(first.c.conversation_id.not_in(archived))
    if len(found) == 1:
        ranked = session.execute(
            select(first.c.message_id, (first.c.weight * found[0][2]).label("score"))
            .where(*where)
            .order_by(first.c.weight.desc(), first.c.message_id.desc())
            .limit(top)
        ).all()
        count = (
            found[0][0] if archived is None else session.scalar(select(func.count()).where(*where))
        )
        return ranked, count or 0
    score = first.c.weight * found[0][2]
    statement = select(first.c.message_id).where(*where)
    for position, (_, word, weight) in enumerate(found[1:]):
        other = index.alias(f"other{position}")
        statement = statement.join(
            other,
            and_(
                other.c.user_id == user_id,
                other.c.term == word,
                other.c.message_id == first.c.message_id,
            ),
        )
        score = score + other.c.weight * weight
    rows = session.execute(
        statement.add_columns(score.label("score"), func.count().over().label("total"))
        .order_by(score.desc(), first.c.message_id.desc())
        .limit(top)
    ).all()
    return rows, rows[0].total if rows else 0


def _rank_prefixes(
    *, session: Session, ranges: list[Any], weights: list[float], top: int
) -> tuple[Sequence[Any], int]:
    """Prefixes that stand for several words ("tom": tom, tomato, tomatoes): the messages
    holding every term, scored over all the words each term stands for."""
    index = SearchTerm.__table__
    matching = (
        intersect(*[select(index.c.message_id).where(r) for r in ranges])
        if len(ranges) > 1
        else select(index.c.message_id).where(ranges[0]).distinct()
    ).cte("matching")
    parts = []
    for where, weight in zip(ranges, weights, strict=True):
        part = select(index.c.message_id, (index.c.weight * weight).label("score")).where(where)
        if len(ranges) > 1:
            part = part.where(index.c.message_id.in_(select(matching.c.message_id)))
        parts.append(part)
    hits = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    score = func.sum(hits.c.score).label("score")
    statement = (
        select(hits.c.message_id, score)
        .group_by(hits.c.message_id)
        .order_by(score.desc(), hits.c.message_id.desc())
        .limit(top)
    )
    ranked = session.execute(statement).all()
    count = session.scalar(select(func.count()).select_from(matching)) or 0
    return ranked, count


def _message_hits(
    *, session: Session, user_id: int, terms: list[str], include_archived: bool, top: int
) -> tuple[list[tuple], int]:
    """[(message row, conversation uuid, title, archived, score)] best first, and how many
    match."""
    ranked, count = _ranked_messages(
        session=session,
        user_id=user_id,
        terms=terms,
        include_archived=include_archived,
        top=top,
    )
    if not ranked:
        return [], 0
    # The columns a hit shows, as Core rows: ORM instances would cost more than the rows.
    statement = (
        select(
            Message.id,
            Message.uuid,
            Message.role,
            Message.content,
            Message.created_at,
            Conversation.uuid.label("conversation_uuid"),
            Conversation.title,
            Conversation.archived,
        )
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.id.in_([row.message_id for row in ranked]))
    )
    found = {row.id: row for row in session.connection().execute(statement)}
    hits = [
        (found[r.message_id], *found[r.message_id][-3:], r.score)
        for r in ranked
        if r.message_id in found
    ]
    return hits, count


def _title_hits(
    *,
    session: Session,
    user_id: int,
    terms: list[str],
    include_archived: bool,
    narrow_in_sql: bool = True,
) -> list[tuple[Any, float]]:
    """[(conversation row, score)] whose title holds every term at a word start."""
    statement = select(
        Conversation.uuid, Conversation.title, Conversation.archived, Conversation.updated_at
    ).where(Conversation.user_id == user_id, Conversation.title.is_not(None))
    if not include_archived:
        statement = statement.where(Conversation.archived.is_(False))
    for term in terms:
        # A substring LIKE narrows cheaply (its case folding is ASCII only, so other terms
        # are left to the word test below, which folds Unicode).
        if term.isascii() and narrow_in_sql:
            statement = statement.where(Conversation.title.icontains(term, autoescape=True))
    # Each term is a run of word characters, so where it occurs in the lower-cased title not
    # after a word character, a word starts with it: the count is `words.split`'s, found by
    # one C-level scan per term instead of a Python loop over the title's words.
    starts = [words.word_start_pattern(t) for t in terms]
    found = []
    for row in session.connection().execute(statement):
        lowered = row.title.lower()
        counted = [len(start.findall(lowered)) for start in starts]
        if all(counted):
            length = words.word_count(lowered)
            score = TITLE_BOOST + sum(words.weight(n, length) for n in counted)
            found.append((row, score))
    return found


def search(
    *, session: Session, user_id: int, q: str, limit: int, offset: int, include_archived: bool
) -> SearchResults:
    if sealing.current() is not None:  # zero-access: the user's sealed text, opened, in Python
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
    # Titles first (a chat named for the words is what people look for), then by score.
    found.sort(key=lambda hit: (hit[3] is not None, -hit[0], -hit[1]))
    page = [
        _hit(owner, message, score, terms) for score, _, owner, message in found[offset:][:limit]
    ]
    took = round((time.perf_counter() - started) * 1000, 2)
    return SearchResults(query=q, data=page, count=len(titles) + matching, took_ms=took)


def _hit(conversation: Any, message: Any, score: float, terms: list[str]) -> SearchHit:
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

"""Usage analytics: daily aggregates per user and model, kept up to date as answers are stored.

The aggregates are kept in the same transaction as the rows they count: a stored answer
adds one message and its tokens and completion time to its user's row for that model and UTC
day (`count_answer`, called by the chat service, which stores answers with Core statements;
a flush hook counts any `Response` added through the ORM); a new conversation adds one to
`conversations_created` (the same hook). Each change is one upsert (`INSERT ... ON CONFLICT
DO UPDATE`), so concurrent server processes never lose an increment. Imports and restores set
`session.info[SKIP_USAGE]` so that copies are not counted as new activity.
"""

from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, Integer, bindparam, case, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.models import Conversation, Message, Response, UsageDaily, User
from backend.schemas import UsageCounts, UsageDayTotal, UsagePublic, UsageRow, UsageUserTotal
from backend.services.errors import BadRequest

SKIP_USAGE = "skip_usage"
COUNTERS = (
    "conversations_created",
    "messages_sent",
    "prompt_tokens",
    "completion_tokens",
    "completion_ms_total",
)
# Tokens charged to the server's daily budget: answers paid by the server's key (or the
# mock). A user's own key's answers are counted above but not here.
BUDGET = "budget_tokens"
MAX_RANGE_DAYS = 366
# The largest value every backend's INTEGER column holds (PostgreSQL's is 32-bit). There,
# stored counters saturate at it instead of failing the transaction that stores an answer;
# everywhere, counts are clamped to it when read.
MAX_COUNTER = 2**31 - 1


def clamp(value: object, *, top: int = MAX_COUNTER) -> int:
    """A count as stored and summed: an int between 0 and `top` (anything else is 0)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return min(max(value, 0), top)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@cache
def _usage_statement(dialect_name: str, counted: tuple[str, ...]) -> Any:
    """The upsert adding to the `counted` counters, built once (building costs more than
    running it); every counter is a bound parameter."""
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    table: Any = UsageDaily.__table__
    keys: dict[str, Any] = {
        name: bindparam(name) for name in ("user_id", "day", "model", *COUNTERS, BUDGET)
    }

    def saturating_sum(name: str) -> Any:
        column, increment = table.c[name], bindparam(name, type_=Integer)
        if dialect_name != "postgresql":
            # 64-bit integers: with increments clamped per answer, no realistic number of
            # answers reaches the top, and reads clamp to MAX_COUNTER.
            return column + increment
        # PostgreSQL's INTEGER is 32-bit: compared as `old > MAX - n`, which cannot
        # overflow where `old + n` could.
        return case((column > MAX_COUNTER - increment, MAX_COUNTER), else_=column + increment)

    return (
        insert(table)
        .values(**keys)
        .on_conflict_do_update(
            index_elements=["user_id", "day", "model"],
            set_={name: saturating_sum(name) for name in counted},
        )
    )


def add_usage(*, connection: Connection, user_id: int, model: str, **increments: int) -> None:
    """Add to one (user, today, model) row, creating it when missing: one statement."""
    statement = _usage_statement(connection.dialect.name, tuple(sorted(increments)))
    values = dict.fromkeys((*COUNTERS, BUDGET), 0)
    values |= {name: clamp(value) for name, value in increments.items()}
    connection.execute(statement, {"user_id": user_id, "day": today(), "model": model, **values})


def _answer_owner(connection: Connection, response: Response) -> int | None:
    conversation_id = response.message.conversation_id if response.message else None
    if conversation_id is None:
        conversation_id = connection.scalar(
            select(Message.conversation_id).where(Message.id == response.message_id)
        )
    return connection.scalar(select(Conversation.user_id).where(Conversation.id == conversation_id))


def count_answer(
    *,
    connection: Connection,
    user_id: int,
    model_used: str,
    tokens_prompt: int | None,
    tokens_completion: int | None,
    completion_time_ms: int | None,
    paid_by_server: bool = True,
    **_other_columns: Any,
) -> None:
    """Count one stored answer (its `responses` row's values) for its user.

    Counts are clamped per answer (0..MAX_TOKENS_PER_ANSWER), whatever a provider reported;
    only an answer the server paid for is charged to the server's budget."""
    prompt = clamp(tokens_prompt, top=settings.MAX_TOKENS_PER_ANSWER)
    completion = clamp(tokens_completion, top=settings.MAX_TOKENS_PER_ANSWER)
    add_usage(
        connection=connection,
        user_id=user_id,
        model=model_used,
        messages_sent=1,
        prompt_tokens=prompt,
        completion_tokens=completion,
        completion_ms_total=clamp(completion_time_ms),
        budget_tokens=prompt + completion if paid_by_server else 0,
    )


def _count_answer(connection: Connection, response: Response) -> None:
    user_id = _answer_owner(connection, response)
    if user_id is None:  # anonymous quick chat
        return
    count_answer(
        connection=connection,
        user_id=user_id,
        model_used=response.model_used,
        tokens_prompt=response.tokens_prompt,
        tokens_completion=response.tokens_completion,
        completion_time_ms=response.completion_time_ms,
    )


@event.listens_for(Session, "after_flush")
def _count_new_rows(session: Session, _flush_context: Any) -> None:
    if session.info.get(SKIP_USAGE):
        return
    connection = session.connection()
    for row in list(session.new):
        if isinstance(row, Response):
            _count_answer(connection, row)
        elif isinstance(row, Conversation) and row.user_id is not None:
            model = row.default_model or ""
            add_usage(
                connection=connection, user_id=row.user_id, model=model, conversations_created=1
            )


def date_range(*, start: date | None, end: date | None) -> tuple[date, date]:
    """Default: the last 30 days including today."""
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=29)
    if start > end:
        raise BadRequest("start must not be after end")
    if (end - start).days >= MAX_RANGE_DAYS:
        raise BadRequest(f"The range may span at most {MAX_RANGE_DAYS} days")
    return start, end


def _counts(rows: list[UsageDaily]) -> dict[str, Any]:
    # Summed in Python (no overflow), from values clamped as read: rows stored before the
    # counters saturated may hold anything.
    sums = {name: sum(clamp(getattr(row, name)) for row in rows) for name in COUNTERS}
    answered, total_ms = sums["messages_sent"], sums.pop("completion_ms_total")
    return sums | {
        "total_tokens": sums["prompt_tokens"] + sums["completion_tokens"],
        "avg_completion_ms": round(total_ms / answered, 1) if answered else None,
    }


def _grouped(rows: list[UsageDaily], key: Any) -> dict[Any, list[UsageDaily]]:
    groups: dict[Any, list[UsageDaily]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def usage_report(
    *, session: Session, user_id: int | None, start: date | None, end: date | None, admin: bool
) -> UsagePublic:
    """One user's usage (or everyone's with user_id=None, admins only) between two days."""
    first, last = date_range(start=start, end=end)
    statement = (
        select(UsageDaily, User.username)
        .join(User, User.id == UsageDaily.user_id)
        .where(UsageDaily.day >= first.isoformat(), UsageDaily.day <= last.isoformat())
        .order_by(UsageDaily.day, UsageDaily.user_id, UsageDaily.model)
    )
    if user_id is not None:
        statement = statement.where(UsageDaily.user_id == user_id)
    found = session.execute(statement).all()
    rows, names = [row for row, _ in found], {row.user_id: name for row, name in found}
    who = (
        (lambda row: {"user_id": row.user_id, "username": names[row.user_id]})
        if admin
        else (lambda row: {})
    )
    return UsagePublic(
        start=first.isoformat(),
        end=last.isoformat(),
        data=[UsageRow(day=r.day, model=r.model, **who(r), **_counts([r])) for r in rows],
        daily=[
            UsageDayTotal(day=d, **_counts(g)) for d, g in _grouped(rows, lambda r: r.day).items()
        ],
        totals=UsageCounts(**_counts(rows)),
        by_user=[
            UsageUserTotal(user_id=u, username=names[u], **_counts(g))
            for u, g in _grouped(rows, lambda r: r.user_id).items()
        ]
        if admin
        else None,
    )

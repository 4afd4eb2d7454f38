"""Daily token budgets and message rates, counted in the database.

Limits live in `usage_limits`: the row without a user is the default; a user's own row
overrides it field by field (null = use the default). Questions are counted per user in fixed
windows (`rate_counters`: this UTC minute, this UTC day) by one upsert in the same transaction
that stores the question, so several server processes share one count; tokens come from the
daily usage aggregates. Going over raises TooManyRequests (429 with Retry-After).
"""

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.orm import Session

from backend.models import RateCounter, UsageDaily, UsageLimit, User
from backend.schemas import MyLimitsPublic, UsageLimitsIn, UsageLimitsPublic
from backend.services import storage
from backend.services.errors import NotFound, TooManyRequests
from backend.services.usage import clamp, today

RATE_FIELDS = ("daily_token_budget", "messages_per_minute", "messages_per_day")
FIELDS = (*RATE_FIELDS, "max_conversations", "max_stored_bytes")
PERIODS = {"minute": timedelta(minutes=1), "day": timedelta(days=1)}


def window_start(period: str, now: datetime) -> datetime:
    if period == "minute":
        return now.replace(second=0, microsecond=0)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _limit_row(*, session: Session, user_id: int | None) -> UsageLimit | None:
    where = UsageLimit.user_id.is_(None) if user_id is None else UsageLimit.user_id == user_id
    return session.scalars(select(UsageLimit).where(where)).first()


_LIMITS = UsageLimit.__table__
# Built once: on the per-question path, building a statement costs more than running it.
_DEFAULT_AND_OWN_LIMITS = select(_LIMITS.c.user_id, *(_LIMITS.c[name] for name in FIELDS)).where(
    _LIMITS.c.user_id.is_(None) | (_LIMITS.c.user_id == bindparam("user_id"))
)


def effective_limits(*, session: Session, user_id: int) -> dict[str, int | None]:
    """The default row and the user's own, read in one query, merged field by field."""
    rows = session.connection().execute(_DEFAULT_AND_OWN_LIMITS, {"user_id": user_id}).all()
    default = next((row for row in rows if row.user_id is None), None)
    own = next((row for row in rows if row.user_id is not None), None)
    return {
        name: own_value
        if own and (own_value := getattr(own, name)) is not None
        else (getattr(default, name) if default else None)
        for name in FIELDS
    }


# Add one question to each of a user's windows (a new window starts at 1), returning each
# window's new count: one statement for both periods. Written as text because SQLAlchemy does
# not cache a multi-row INSERT (it would be compiled again for every question); the syntax is
# the same on SQLite, deltadb and PostgreSQL.
_COUNT_QUESTION = text(
    """
    INSERT INTO rate_counters (user_id, period, count, window_start)
    VALUES (:user_id, 'minute', 1, :minute_start), (:user_id, 'day', 1, :day_start)
    ON CONFLICT (user_id, period) DO UPDATE SET
        count = CASE WHEN rate_counters.window_start = excluded.window_start
                     THEN rate_counters.count + 1 ELSE 1 END,
        window_start = excluded.window_start
    RETURNING period, count
    """
).bindparams(
    *(bindparam(f"{period}_start", type_=RateCounter.window_start.type) for period in PERIODS)
)


def _count_question(*, connection: Connection, user_id: int, now: datetime) -> dict[str, int]:
    """Count this question in the user's current minute and day; the new count of each."""
    starts = {f"{period}_start": window_start(period, now) for period in PERIODS}
    rows = connection.execute(_COUNT_QUESTION, {"user_id": user_id, **starts}).all()
    return dict(rows)


# Built once: every question checks the budget. A few rows (one per model used today).
_BUDGET_TOKENS_TODAY = select(UsageDaily.budget_tokens).where(
    UsageDaily.user_id == bindparam("user_id"), UsageDaily.day == bindparam("day")
)


def tokens_today(*, session: Session, user_id: int) -> int:
    """Tokens charged to the server's budget today (answers from a user's own key are not);
    summed in Python from clamped values, so no stored value can overflow the sum."""
    rows = session.connection().execute(_BUDGET_TOKENS_TODAY, {"user_id": user_id, "day": today()})
    return sum(clamp(value) for (value,) in rows)


def _too_many(reason: str, *, reset: datetime, now: datetime) -> TooManyRequests:
    seconds = max(1, int((reset - now).total_seconds() + 0.999))
    hours, rest = divmod(seconds, 3600)
    wait = f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
    when = reset.strftime("%Y-%m-%dT%H:%M:%SZ")
    return TooManyRequests(f"{reason} It resets at {when} (in {wait}).", retry_after=seconds)


def enforce(*, session: Session, user_id: int) -> dict[str, int | None]:
    """Count this question and refuse it when a limit is reached (the caller then rolls back).

    Returns the user's effective limits, for the storage check that follows."""
    limits = check_budget(session=session, user_id=user_id)
    count_question(session=session, user_id=user_id, limits=limits)
    return limits


def check_budget(*, session: Session, user_id: int) -> dict[str, int | None]:
    """The reading half of `enforce`: refuse a question when the daily token budget is spent.
    Returns the user's effective limits, for `count_question`."""
    limits, now = effective_limits(session=session, user_id=user_id), datetime.now(UTC)
    budget = limits["daily_token_budget"]
    if budget is not None and (used := tokens_today(session=session, user_id=user_id)) >= budget:
        reason = f"Daily token budget reached: {used} of {budget} tokens used today."
        raise _too_many(reason, reset=window_start("day", now) + PERIODS["day"], now=now)
    return limits


def count_question(*, session: Session, user_id: int, limits: dict[str, int | None]) -> None:
    """The writing half of `enforce`: count the question in one statement and refuse it when
    that passes a message limit (the caller then rolls back, the count with it). A turn does
    this after its reads, so that what holds the store's writer lock is only its writes."""
    now = datetime.now(UTC)
    counts = _count_question(connection=session.connection(), user_id=user_id, now=now)
    for period, name in (("minute", "messages_per_minute"), ("day", "messages_per_day")):
        if (limit := limits[name]) is not None and counts[period] > limit:
            reset = window_start(period, now) + PERIODS[period]
            reason = f"Message limit reached: at most {limit} messages per {period}."
            raise _too_many(reason, reset=reset, now=now)


def _current_count(*, session: Session, user_id: int, period: str, now: datetime) -> int:
    counter = session.scalars(
        select(RateCounter).where(RateCounter.user_id == user_id, RateCounter.period == period)
    ).first()
    if counter is None or counter.window_start != window_start(period, now):
        return 0
    return counter.count


def my_limits(*, session: Session, user_id: int) -> MyLimitsPublic:
    now = datetime.now(UTC)
    limits = effective_limits(session=session, user_id=user_id)
    max_conversations, max_stored_bytes = storage.effective(limits)
    return MyLimitsPublic(
        **{name: limits[name] for name in RATE_FIELDS},
        max_conversations=max_conversations,
        max_stored_bytes=max_stored_bytes,
        conversations=storage.conversation_count(session=session, user_id=user_id),
        stored_bytes=storage.stored_bytes(session=session, user_id=user_id),
        tokens_today=tokens_today(session=session, user_id=user_id),
        messages_this_minute=_current_count(
            session=session, user_id=user_id, period="minute", now=now
        ),
        messages_today=_current_count(session=session, user_id=user_id, period="day", now=now),
        day_resets_at=window_start("day", now) + PERIODS["day"],
        minute_resets_at=window_start("minute", now) + PERIODS["minute"],
    )


def _public(row: UsageLimit | None, user_id: int | None) -> UsageLimitsPublic:
    values = {name: getattr(row, name) if row else None for name in FIELDS}
    return UsageLimitsPublic(user_id=user_id, **values)


def read_limits(*, session: Session, user_id: int | None) -> UsageLimitsPublic:
    """The stored limits of a user (None: the default); all null when none are stored."""
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFound("User not found")
    return _public(_limit_row(session=session, user_id=user_id), user_id)


def set_limits(
    *, session: Session, user_id: int | None, limits: UsageLimitsIn
) -> UsageLimitsPublic:
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFound("User not found")
    row = _limit_row(session=session, user_id=user_id)
    if row is None:
        row = UsageLimit(user_id=user_id)
        session.add(row)
    for name in FIELDS:
        setattr(row, name, getattr(limits, name))
    session.commit()
    return _public(row, user_id)

"""Sign-in and registration throttling, counted in the database so every process shares it.

Failed sign-ins are counted under four keys at once:

- *pair*: one account from one address. After LOGIN_FREE_FAILURES (5) failures the next
  attempt waits 1 s, and each further failure doubles the wait, up to LOGIN_MAX_DELAY_SECONDS
  (15 min). A success resets it and marks the address as *known* for that account (30 days).
- *account*: one account from anywhere, looser (20 free failures, then the same doubling):
  guessing from many addresses at one account slows down too.
- *address*: one address against any accounts (50 free failures, then doubling): spraying
  many accounts from one place slows down.
- *global*: all failures on the server per minute (600): past that, only known addresses
  get through until the minute is over.

A known address is held only to its own pair counter, so a stranger's failures never lock
the real owner out from where they usually sign in. Accounts are the resolved user id, so a
username and an email address count together; a name without an account is counted under the
typed name, so a wait says nothing about which accounts exist. Counters forget failures an
hour old. Keys are keyed hashes (HMAC with SECRET_KEY): no name or address is stored. IPv6
addresses count per /64, which is what one subscriber usually gets.

Registrations are counted per address in fixed hours (REGISTRATIONS_PER_ADDRESS_PER_HOUR).
"""

import hashlib
import hmac
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, and_, bindparam, delete, or_, select, text
from sqlalchemy.orm import Session

from backend.core.config import settings
from backend.models import SignInCounter, User, utcnow
from backend.services.errors import TooManyRequests

PAIR, ACCOUNT, ADDRESS, GLOBAL, REGISTER = "pair", "account", "address", "global", "register"
FAILURE_MEMORY = timedelta(hours=1)
KNOWN_FOR = timedelta(days=30)
GLOBAL_WINDOW = timedelta(minutes=1)
REGISTER_WINDOW = timedelta(hours=1)
# Old counters are swept when a minute of failures begins and on every this many-th failure
# within a minute: bounded work, and a bounded table under a spraying attack.
SWEEP_EVERY = 100


@dataclass(frozen=True)
class SignInKeys:
    pair: str
    account: str
    address: str


def _digest(*parts: str) -> str:
    message = "\x00".join(parts).encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def normalized_address(address: str) -> str:
    """The unit an address is counted in: itself for IPv4, its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP address (a test client, a Unix socket)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def account_name(*, user: User | None, login: str) -> str:
    return f"user:{user.id}" if user is not None else f"name:{login.strip().lower()}"


def keys_for(*, account: str, address: str) -> SignInKeys:
    where = normalized_address(address)
    return SignInKeys(
        pair=_digest(PAIR, account, where),
        account=_digest(ACCOUNT, account),
        address=_digest(ADDRESS, where),
    )


def _delay(count: int, free: int) -> float:
    """Seconds to wait after `count` failures: none for the first `free`, then doubling."""
    if count < free:
        return 0.0
    return float(min(settings.LOGIN_MAX_DELAY_SECONDS, 2 ** min(count - free, 30)))


def _rows(*, session: Session, keys: SignInKeys) -> dict[str, SignInCounter]:
    wanted = [(PAIR, keys.pair), (ACCOUNT, keys.account), (ADDRESS, keys.address), (GLOBAL, "")]
    where = or_(*(and_(SignInCounter.scope == s, SignInCounter.key == k) for s, k in wanted))
    return {row.scope: row for row in session.scalars(select(SignInCounter).where(where))}


def _backoff_until(row: SignInCounter | None, *, free: int, now: datetime) -> datetime | None:
    if row is None or row.last_at <= now - FAILURE_MEMORY:
        return None
    return row.last_at + timedelta(seconds=_delay(row.count, free))


def _global_until(row: SignInCounter | None, *, now: datetime) -> datetime | None:
    if row is None or row.last_at <= now - GLOBAL_WINDOW:
        return None
    if row.count < settings.LOGIN_GLOBAL_FAILURES_PER_MINUTE:
        return None
    return row.last_at + GLOBAL_WINDOW


def sign_in_wait(*, session: Session, keys: SignInKeys, now: datetime | None = None) -> int:
    """Whole seconds before this account may be tried from this address; 0 means now."""
    now = now or utcnow()
    rows = _rows(session=session, keys=keys)
    pair = rows.get(PAIR)
    untils = [_backoff_until(pair, free=settings.LOGIN_FREE_FAILURES, now=now)]
    succeeded_at = pair.succeeded_at if pair is not None else None
    if succeeded_at is None or succeeded_at <= now - KNOWN_FOR:  # not a known pair
        untils += [
            _backoff_until(rows.get(ACCOUNT), free=settings.LOGIN_ACCOUNT_FREE_FAILURES, now=now),
            _backoff_until(rows.get(ADDRESS), free=settings.LOGIN_ADDRESS_FREE_FAILURES, now=now),
            _global_until(rows.get(GLOBAL), now=now),
        ]
    latest = max((until for until in untils if until is not None), default=None)
    if latest is None or latest <= now:
        return 0
    return max(1, math.ceil((latest - now).total_seconds()))


def refuse_if_waiting(*, session: Session, keys: SignInKeys) -> None:
    if wait := sign_in_wait(session=session, keys=keys):
        raise TooManyRequests(
            f"Too many failed sign-ins; try again in {wait} seconds.", retry_after=wait
        )


_TIME = SignInCounter.last_at.type
# One counter up by one; a counter whose last failure is older than :stale starts again at 1.
# Text, because the upsert's syntax is the same on SQLite, deltadb and PostgreSQL.
_BUMP_SLIDING = (
    text(
        """
    INSERT INTO sign_in_counters (scope, key, count, last_at) VALUES (:scope, :key, 1, :now)
    ON CONFLICT (scope, key) DO UPDATE SET
        count = CASE WHEN sign_in_counters.last_at > :stale
                     THEN sign_in_counters.count + 1 ELSE 1 END,
        last_at = excluded.last_at
    RETURNING count, last_at
    """
    )
    .bindparams(bindparam("now", type_=_TIME), bindparam("stale", type_=_TIME))
    .columns(count=Integer, last_at=_TIME)
)
# The same in fixed windows: last_at is the window's start.
_BUMP_WINDOW = (
    text(
        """
    INSERT INTO sign_in_counters (scope, key, count, last_at) VALUES (:scope, :key, 1, :now)
    ON CONFLICT (scope, key) DO UPDATE SET
        count = CASE WHEN sign_in_counters.last_at > :stale
                     THEN sign_in_counters.count + 1 ELSE 1 END,
        last_at = CASE WHEN sign_in_counters.last_at > :stale
                       THEN sign_in_counters.last_at ELSE excluded.last_at END
    RETURNING count, last_at
    """
    )
    .bindparams(bindparam("now", type_=_TIME), bindparam("stale", type_=_TIME))
    .columns(count=Integer, last_at=_TIME)
)


def _bump(
    *, session: Session, scope: str, key: str, now: datetime, window: timedelta, fixed: bool
) -> tuple[int, datetime]:
    statement = _BUMP_WINDOW if fixed else _BUMP_SLIDING
    values = {"scope": scope, "key": key, "now": now, "stale": now - window}
    count, last_at = session.connection().execute(statement, values).one()
    return count, last_at


def record_failure(*, session: Session, keys: SignInKeys) -> None:
    now = utcnow()
    for scope, key in ((PAIR, keys.pair), (ACCOUNT, keys.account), (ADDRESS, keys.address)):
        _bump(session=session, scope=scope, key=key, now=now, window=FAILURE_MEMORY, fixed=False)
    count, _ = _bump(
        session=session, scope=GLOBAL, key="", now=now, window=GLOBAL_WINDOW, fixed=True
    )
    if count == 1 or count % SWEEP_EVERY == 0:
        _sweep(session=session, now=now)
    session.commit()


def record_success(*, session: Session, keys: SignInKeys) -> None:
    """The pair's failures are forgiven and its address becomes known (caller commits)."""
    now = utcnow()
    row = session.scalars(
        select(SignInCounter).where(SignInCounter.scope == PAIR, SignInCounter.key == keys.pair)
    ).first()
    if row is None:
        row = SignInCounter(scope=PAIR, key=keys.pair, count=0, last_at=now, succeeded_at=now)
        session.add(row)
    else:
        row.count, row.last_at, row.succeeded_at = 0, now, now


def _sweep(*, session: Session, now: datetime) -> None:
    """Forget counters nothing reads any more (bounded table under a spraying attack)."""
    session.execute(
        delete(SignInCounter).where(
            SignInCounter.last_at < now - max(FAILURE_MEMORY, REGISTER_WINDOW),
            SignInCounter.succeeded_at.is_(None) | (SignInCounter.succeeded_at < now - KNOWN_FOR),
        )
    )


def count_registration(*, session: Session, address: str) -> None:
    """Count one registration attempt from `address`; 429 past the hourly limit."""
    now = utcnow()
    key = _digest(REGISTER, normalized_address(address))
    count, started = _bump(
        session=session, scope=REGISTER, key=key, now=now, window=REGISTER_WINDOW, fixed=True
    )
    limit = settings.REGISTRATIONS_PER_ADDRESS_PER_HOUR
    if count > limit:
        session.rollback()
        wait = max(1, math.ceil((started + REGISTER_WINDOW - now).total_seconds()))
        raise TooManyRequests(
            f"Too many new accounts from your address (at most {limit} an hour); "
            f"try again in {wait} seconds.",
            retry_after=wait,
        )
    session.commit()

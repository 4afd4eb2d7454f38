"""Sign-in counters: doubling waits, forgetting, known addresses, keys that reveal nothing."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.core.config import settings
from backend.core.db import SessionLocal
from backend.models import SignInCounter
from backend.services import throttle


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(throttle, "utcnow", clock)
    return clock


@pytest.fixture
def session() -> Iterator[object]:
    with SessionLocal() as db:
        yield db


def fail(session: object, keys: throttle.SignInKeys, times: int = 1) -> None:
    for _ in range(times):
        throttle.record_failure(session=session, keys=keys)  # type: ignore[arg-type]


def wait(session: object, keys: throttle.SignInKeys, clock: Clock) -> int:
    return throttle.sign_in_wait(session=session, keys=keys, now=clock.now)  # type: ignore[arg-type]


def test_waits_start_after_the_free_failures_then_double_up_to_the_cap(
    session: object, clock: Clock
) -> None:
    keys = throttle.keys_for(account="user:1", address="198.51.100.7")
    fail(session, keys, settings.LOGIN_FREE_FAILURES - 1)
    assert wait(session, keys, clock) == 0
    seen = []
    for _ in range(12):
        fail(session, keys)
        seen.append(wait(session, keys, clock))
    assert seen[:5] == [1, 2, 4, 8, 16]
    assert seen[-1] == settings.LOGIN_MAX_DELAY_SECONDS == 900
    clock.advance(seen[-1])
    assert wait(session, keys, clock) == 0  # the wait is a wait, not a lock


def test_failures_are_forgotten_after_an_hour(session: object, clock: Clock) -> None:
    keys = throttle.keys_for(account="user:1", address="198.51.100.7")
    fail(session, keys, settings.LOGIN_FREE_FAILURES + 3)
    assert wait(session, keys, clock) == 8
    clock.advance(3601)
    fail(session, keys)  # counts from one again
    assert wait(session, keys, clock) == 0


def test_a_known_address_is_held_only_to_its_own_counter(session: object, clock: Clock) -> None:
    owner = throttle.keys_for(account="user:1", address="198.51.100.7")
    throttle.record_success(session=session, keys=owner)  # type: ignore[arg-type]
    session.commit()  # type: ignore[attr-defined]
    for n in range(settings.LOGIN_ACCOUNT_FREE_FAILURES + 5):  # strangers, many addresses
        fail(session, throttle.keys_for(account="user:1", address=f"203.0.113.{n}"))
    newcomer = throttle.keys_for(account="user:1", address="192.0.2.1")
    assert wait(session, newcomer, clock) > 0
    assert wait(session, owner, clock) == 0
    clock.advance(31 * 24 * 3600)  # known for 30 days only; the strangers are forgotten too
    assert wait(session, owner, clock) == 0


def test_ipv6_addresses_count_per_64() -> None:
    one = throttle.keys_for(account="user:1", address="2001:db8:1:2::1")
    other = throttle.keys_for(account="user:1", address="2001:db8:1:2:ffff::9")
    elsewhere = throttle.keys_for(account="user:1", address="2001:db8:1:3::1")
    assert one == other != elsewhere
    mapped = throttle.keys_for(account="user:1", address="::ffff:192.0.2.1")
    assert mapped == throttle.keys_for(account="user:1", address="192.0.2.1")


def test_counters_store_keyed_hashes_only(session: object) -> None:
    fail(session, throttle.keys_for(account="name:someone", address="198.51.100.7"))
    stored = [
        (row.scope, row.key)
        for row in session.scalars(select(SignInCounter))  # type: ignore[attr-defined]
    ]
    assert {scope for scope, _ in stored} == {"pair", "account", "address", "global"}
    text = repr(stored)
    assert "someone" not in text and "198.51.100.7" not in text


def test_old_counters_are_swept(session: object, clock: Clock) -> None:
    for n in range(4):
        fail(session, throttle.keys_for(account=f"name:{n}", address=f"203.0.113.{n}"))
    clock.advance(2 * 3600)
    fail(session, throttle.keys_for(account="name:last", address="192.0.2.1"))  # a new minute
    count = len(list(session.scalars(select(SignInCounter))))  # type: ignore[attr-defined]
    assert count == 4  # the last failure's pair, account, address and the global window

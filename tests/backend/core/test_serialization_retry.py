"""A unit of work that loses a serialization race runs again; other errors are not retried."""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from backend.core import db
from deltadb_dialect import dbapi


def _lost_race() -> OperationalError:
    return OperationalError("INSERT ...", {}, dbapi.SerializationFailure("could not serialize"))


def test_a_unit_that_lost_a_serialization_race_runs_again_from_its_start() -> None:
    sessions: list[Session] = []

    def unit(*, session: Session, value: int) -> int:
        sessions.append(session)
        assert session.execute(text("SELECT 1")).scalar() == 1
        if len(sessions) < 3:
            raise _lost_race()
        return value

    assert db.run_unit_of_work(unit, value=7) == 7
    assert len(sessions) == 3 and len({id(s) for s in sessions}) == 3  # a new session each


def test_the_last_try_raises_and_other_errors_are_never_retried() -> None:
    calls = []

    def always_lost(*, session: Session) -> None:
        calls.append(1)
        raise _lost_race()

    with pytest.raises(OperationalError):
        db.run_unit_of_work(always_lost)
    assert len(calls) == db.SERIALIZATION_RETRIES + 1

    calls.clear()

    def locked(*, session: Session) -> None:
        calls.append(1)
        raise OperationalError("INSERT ...", {}, dbapi.OperationalError("database is locked"))

    with pytest.raises(OperationalError):
        db.run_unit_of_work(locked)
    assert calls == [1]

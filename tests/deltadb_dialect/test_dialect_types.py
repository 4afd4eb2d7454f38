"""Type processing of the deltadb dialect (what is bound for SQLite to store)."""

import datetime

import pytest
from sqlalchemy.dialects.sqlite import DATETIME

from deltadb_dialect.base import DeltaDateTime, aware_text


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 11, 22, 22, 10, 3, 179929, tzinfo=datetime.UTC),
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),  # no microseconds
        datetime.datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=datetime.UTC),  # a short year
        datetime.datetime(
            2026, 6, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
        ),
        datetime.datetime(
            2026,
            6,
            1,
            12,
            0,
            0,
            5,
            tzinfo=datetime.timezone(datetime.timedelta(hours=5, minutes=30)),
        ),
    ],
)
def test_aware_datetimes_bind_as_the_general_formula_writes_them(make_engine, value) -> None:
    """The fast text of an aware timestamp is byte for byte the general one."""
    dialect = make_engine().dialect
    general = DeltaDateTime(timezone=False).bind_processor(dialect)
    assert DeltaDateTime(timezone=True).bind_processor(dialect)(value) == aware_text(general, value)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 11, 22, 22, 10, 3, 179929),
        datetime.datetime(2026, 1, 2, 3, 4, 5),  # no microseconds
        datetime.datetime(1, 1, 1, 0, 0, 0, 1),  # a short year
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC),  # aware, in a naive column
        datetime.date(2026, 6, 1),
        None,
    ],
)
def test_naive_datetimes_bind_as_sqlite_writes_them(make_engine, value) -> None:
    """The fast text of a naive timestamp is byte for byte SQLite's dialect's."""
    dialect = make_engine().dialect
    sqlite_text = DATETIME().bind_processor(dialect)
    assert DeltaDateTime().bind_processor(dialect)(value) == sqlite_text(value)


def test_a_custom_storage_format_is_kept(make_engine) -> None:
    dialect = make_engine().dialect
    custom = DeltaDateTime(storage_format="%(year)04d/%(month)02d/%(day)02d")
    value = datetime.datetime(2026, 6, 1, 12, 30)
    assert custom.bind_processor(dialect)(value) == "2026/06/01"

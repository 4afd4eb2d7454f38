"""Shared types of query and path parameters: integers stay inside what a database can hold.

An unbounded `int` lets `offset=10**20` or a 25-digit id reach the driver, which cannot bind it
(SQLite and PostgreSQL stop at 64 bits) and fails with a 500; bounded here, it is a 422 that
says the allowed range.
"""

from typing import Annotated

from fastapi import Path, Query

INT64_MAX = 2**63 - 1
# Further than any listing goes; the bound keeps OFFSET well inside 64 bits.
MAX_OFFSET = 1_000_000_000

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")]
UserId = Annotated[int, Path(ge=1, le=INT64_MAX, description="A user's id")]
UserIdFilter = Annotated[int | None, Query(ge=1, le=INT64_MAX, description="Only this user")]

"""Sealed columns: conversation content sealed with its owner's content key on the way in,
opened on the way out, by the column type itself.

Which key applies is request-scoped state (a context variable) set once the caller is
authenticated (backend/services/zero_access.py): a zero-access user's session holding their
key seals every content value it writes and opens what it reads; a zero-access session
without the key (after an admin's password reset, before the recovery key) may read only
placeholders and may not write content at all; a user without the mode on a server that
requires it may read their plain content but not write any until they turn the mode on;
everyone else reads and writes plain text.
Tasks started from a request (answers generated in the background) inherit the state, so
they hold the key while they run, and only then.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator, TypeEngine

from backend.core import content_keys
from backend.services.errors import ServiceError

# Plain text that happens to look like an escaped or sealed value is stored escaped, so
# that no plain text is ever read back as a sealed one (or mistaken for it).
_ESCAPE = "zs0:"


class ContentLocked(ServiceError):
    status_code = 423

    def __init__(self) -> None:
        super().__init__(
            "Your conversations are sealed and this session does not hold their key: "
            "enter your recovery key in Settings, Privacy."
        )


class ZeroAccessRequired(ServiceError):
    status_code = 403

    def __init__(self) -> None:
        super().__init__(
            "The administrator requires zero-access conversations on this server: turn it on "
            "in Settings, Privacy (your password, then a recovery key to save) before chatting."
        )


@dataclass(frozen=True)
class Sealing:
    """The caller's sealing: their key (if this session holds it) and whether writes seal."""

    user_id: int
    key: bytes | None
    seal_writes: bool
    sealer: content_keys.Sealer | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sealer = content_keys.Sealer(self.key) if self.key is not None else None
        object.__setattr__(self, "sealer", sealer)


_current: ContextVar[Sealing | None] = ContextVar("openchat_sealing", default=None)
# True for a request of a user without the mode while the server requires it: their content
# cannot be written (plain) until they turn the mode on; reading it still works.
_awaiting: ContextVar[bool] = ContextVar("openchat_sealing_awaited", default=False)


def current() -> Sealing | None:
    return _current.get()


def awaiting() -> bool:
    return _current.get() is None and _awaiting.get()


def enter(state: Sealing | None, *, awaited: bool = False) -> None:
    """Set for the rest of this request (and the tasks it starts)."""
    _current.set(state)
    _awaiting.set(awaited and state is None)


def refuse_if_awaiting() -> None:
    """For routes that start writing content later (an import): refuse at once."""
    if awaiting():
        raise ZeroAccessRequired


@contextmanager
def sealing(state: Sealing | None) -> Iterator[None]:
    """Set for a block (background work that is not a request)."""
    token = _current.set(state)
    try:
        yield
    finally:
        _current.reset(token)


def seal_for_write(value: str) -> str:
    state = _current.get()
    if state is None and _awaiting.get():
        raise ZeroAccessRequired
    if state is None or not state.seal_writes:
        return _ESCAPE + value if value.startswith("zs") else value
    if state.sealer is None:
        raise ContentLocked
    return state.sealer.seal(value)


def open_for_read(value: str) -> str:
    if value.startswith(_ESCAPE):
        return value[len(_ESCAPE) :]
    if not content_keys.is_sealed(value):
        return value
    state = _current.get()
    if state is None or state.sealer is None:
        return content_keys.PLACEHOLDER
    try:
        return state.sealer.open(value)
    except content_keys.WrongKey:  # another user's content, or altered
        return content_keys.PLACEHOLDER


class SealedText(TypeDecorator[str]):
    """TEXT whose values are sealed for zero-access users (see the module's docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else seal_for_write(value)

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        return None if value is None else open_for_read(value)

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        # A search pattern or a compared literal is not content to seal.
        return Text()

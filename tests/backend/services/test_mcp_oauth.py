"""An authorization that ends leaves a newer one's state alone."""

from typing import Any

import pytest

from backend.services.mcp_oauth import _finish

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class MemoryStore:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    async def load(self) -> dict[str, Any]:
        return dict(self.state)

    async def save(self, state: dict[str, Any]) -> None:
        self.state = state


async def test_a_replaced_flow_does_not_clear_the_newer_ones_pending_state() -> None:
    store = MemoryStore({"client": {"client_id": "c"}, "pending": {"state": "newer"}})
    await _finish(store, "older", error="A newer authorization of this server replaced this one")  # type: ignore[arg-type]
    assert store.state == {"client": {"client_id": "c"}, "pending": {"state": "newer"}}


async def test_a_flow_that_ends_clears_its_own_pending_state_and_notes_the_outcome() -> None:
    store = MemoryStore({"pending": {"state": "mine", "code": "c"}, "tokens": {"a": 1}})
    await _finish(store, "mine", error=None)  # type: ignore[arg-type]
    assert store.state == {"pending": None, "error": None, "tokens": {"a": 1}}
    await _finish(store, None, error="refused")  # type: ignore[arg-type]
    assert store.state["error"] == "refused"

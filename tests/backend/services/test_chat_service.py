"""The chat flow's rules that are easier to see below the HTTP layer."""

import asyncio

import pytest
from chat_factories import create_conversation, create_user
from fastapi.testclient import TestClient

from backend.core.db import engine
from backend.llm.transport import StreamingASGITransport
from backend.services.chat import derive_title


@pytest.mark.parametrize(
    "question,title",
    [
        ("Hello", "Hello"),
        ("  multi\nline question  ", "multi"),
        ("   ", "New chat"),
        ("word " * 30, ("word " * 12).strip() + "…"),
    ],
)
def test_derive_title(question: str, title: str) -> None:
    assert derive_title(question) == title
    assert len(derive_title(question)) <= 61


def test_no_connection_is_checked_out_while_the_model_answers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store serializes transactions: none may be open while we wait on the model.

    Observed where every model request leaves the process in mock mode (the transport), so
    it holds for whichever answering path a conversation takes.
    """
    checked_out_during_call: list[int] = []
    real_request = StreamingASGITransport.handle_async_request

    async def observing_request(self, request):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0)
        checked_out_during_call.append(engine.pool.checkedout())
        return await real_request(self, request)

    monkeypatch.setattr(StreamingASGITransport, "handle_async_request", observing_request)
    user = create_user()
    uuid = create_conversation(client, user)["uuid"]
    url = f"/api/conversations/{uuid}/messages"
    assert client.post(url, json={"content": "hi"}, headers=user.headers).status_code == 201
    streamed = client.post(
        url, json={"content": "hi"}, headers={**user.headers, "Accept": "text/event-stream"}
    )
    assert "event: done" in streamed.text
    assert len(checked_out_during_call) >= 2 and set(checked_out_during_call) == {0}

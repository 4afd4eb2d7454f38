"""A ChatGPT conversation read as a tree of nodes: the shown branch becomes the messages,
plumbing and other branches are left out and counted, odd input never raises anything but a
reason."""

from typing import Any

import pytest
from chatgpt_exports import conversation

from backend.core.config import settings
from backend.services import chatgpt_import
from backend.services.chatgpt_import import (
    EMPTY,
    HIDDEN_SYSTEM,
    SHORTENED,
    TOOL,
    NotAConversation,
    read_conversation,
    shown_branch,
    to_export,
    to_messages,
)


def _node(parent: str | None, role: str, text: Any, at: float = 1.0, **message: Any) -> dict:
    content = {"content_type": message.pop("content_type", "text"), "parts": [text]}
    body = {"author": {"role": role}, "content": content, "create_time": at, **message}
    return {"parent": parent, "message": body}


def _path_to(messages: list[Any], uuid: str | None) -> list[Any]:
    by_uuid = {m.uuid: m for m in messages}
    path = []
    while uuid is not None:
        path.append(by_uuid[uuid])
        uuid = by_uuid[uuid].parent_uuid
    return path[::-1]


def test_every_branch_becomes_messages_and_the_plumbing_is_counted() -> None:
    exported, skipped = to_export(conversation(4, archived=True))
    assert exported.archived and exported.title == "Chat number 4"
    shown = _path_to(exported.messages, exported.current_message_uuid)
    assert [m.role for m in shown] == ["user", "assistant"] * 3
    assert shown[1].model == "gpt-4o"
    # The answer on the other branch is kept, beside the shown one, under the same question.
    others = [m for m in exported.messages if m not in shown]
    assert [(m.uuid, m.role, m.parent_uuid) for m in others] == [("alt", "assistant", "q2")]
    assert exported.created_at is not None and exported.updated_at > exported.created_at
    assert skipped == {HIDDEN_SYSTEM: 2, TOOL: 2, EMPTY: 1}


def test_nodes_keep_their_parents_for_every_branch() -> None:
    tree = read_conversation(conversation(0))
    assert tree.nodes["alt"].parent == tree.nodes["a2"].parent == "q2"
    assert tree.nodes["alt"].skip is None  # a real answer, only on another branch
    assert tree.nodes["root"].role is None
    assert [n.id for n in shown_branch(tree)][:3] == ["root", "sys", "ctx"]


def test_without_a_current_node_the_newest_leaf_is_shown() -> None:
    item = {
        "id": "c",
        "mapping": {
            "u": _node(None, "user", "question"),
            "old": _node("u", "assistant", "first answer", at=2.0),
            "new": _node("u", "assistant", "second answer", at=3.0),
        },
    }
    messages, shown, skipped = to_messages(read_conversation(item))
    assert [m.content for m in messages] == ["question", "first answer", "second answer"]
    assert [m.content for m in _path_to(messages, shown)] == ["question", "second answer"]
    assert skipped == {}


def test_multimodal_parts_keep_their_text_and_odd_text_is_cleaned() -> None:
    item = {
        "id": "c",
        "current_node": "a",
        "mapping": {
            "u": {
                "parent": None,
                "message": {
                    "author": {"role": "user"},
                    "content": {
                        "content_type": "multimodal_text",
                        "parts": [{"asset_pointer": "file-service://x"}, "what is \x00this?\ud800"],
                    },
                },
            },
            "a": _node("u", "assistant", "x" * (settings.MAX_MESSAGE_CHARS * 4 + 10)),
        },
    }
    messages, _, skipped = to_messages(read_conversation(item))
    assert messages[0].content == "what is this??"  # NUL dropped, the lone surrogate replaced
    assert len(messages[1].content) == settings.MAX_MESSAGE_CHARS * 4
    assert skipped == {SHORTENED: 1}


def test_a_cycle_in_the_mapping_ends_the_branch() -> None:
    item = {
        "id": "c",
        "current_node": "b",
        "mapping": {"a": _node("b", "user", "one"), "b": _node("a", "assistant", "two")},
    }
    messages, _, _ = to_messages(read_conversation(item))
    assert [m.content for m in messages] == ["one", "two"]


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (3, "not an object"),
        ({"mapping": {}}, "no conversation id"),
        ({"id": "  "}, "no conversation id"),
        ({"id": "c", "mapping": []}, "no mapping"),
    ],
)
def test_what_is_not_a_conversation_says_why(item: Any, reason: str) -> None:
    with pytest.raises(NotAConversation, match=reason):
        read_conversation(item)


def test_garbage_inside_a_conversation_is_skipped_not_fatal() -> None:
    item = {
        "id": "c",
        "title": 5,
        "create_time": "yesterday",
        "mapping": {
            "a": 1,
            "b": {"message": {"author": "x", "content": [], "metadata": 7}},
            "c": None,
            "d": {"parent": ["b"], "message": {"author": {"role": ["user"]}}},
        },
    }
    exported, _ = to_export(item)
    assert exported.messages == [] and exported.title is None and exported.created_at is None
    odd_type = {
        "id": "c",
        "mapping": {
            "u": {
                "message": {
                    "author": {"role": "user"},
                    "content": {"content_type": ["text"], "parts": ["still a question"]},
                }
            }
        },
    }
    assert [m.content for m in to_export(odd_type)[0].messages] == ["still a question"]
    assert chatgpt_import.timestamp(1e300) is None

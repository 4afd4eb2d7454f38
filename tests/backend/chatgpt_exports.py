"""ChatGPT exports as ChatGPT writes them, made up for tests: `conversations.json` and the zip.

Each conversation has what real ones have: a root without a message, a hidden system message,
custom instructions (`user_editable_context`), questions and answers with ChatGPT's metadata,
a tool call and its output, an empty placeholder, and a regenerated answer on a second branch
that is not the one `current_node` shows. `write_export` streams conversations to a file, so a
200 MB export never sits in the test's memory either.
"""

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

START = 1_700_000_000.0
WORDS = (
    "the quick brown fox jumps over a lazy dog while seven wizards quietly box "
    "jumping zebras near old stone bridges under silver moonlight"
).split()


@dataclass(frozen=True)
class Shape:
    """What each generated conversation holds, so tests know what to expect."""

    turns: int = 3  # question and answer pairs on the shown branch
    words: int = 60  # words per message

    # Per conversation: system + custom instructions hidden; one tool call and one tool
    # output; one empty node; one regenerated answer on another branch.
    hidden, tools, empty, other_branch = 2, 2, 1, 1

    @property
    def messages(self) -> int:
        """The messages an import stores: the branch shown and the other branch's answer."""
        return 2 * self.turns + self.other_branch


def _text(seed: int, words: int) -> str:
    return " ".join(WORDS[(seed * 7 + i * 3) % len(WORDS)] for i in range(words)) + f" #{seed}"


def _message(node_id: str, role: str, text: str, at: float, **extra: Any) -> dict[str, Any]:
    content_type = extra.pop("content_type", "text")
    metadata = {
        "request_id": f"req-{node_id}",
        "message_type": None,
        "timestamp_": "absolute",
        "citations": [],
        "content_references": [],
        **extra.pop("metadata", {}),
    }
    if role == "assistant":
        metadata.update(
            model_slug="gpt-4o",
            default_model_slug="gpt-4o",
            finish_details={"type": "stop", "stop_tokens": [200002]},
            is_complete=True,
            parent_id=None,
        )
    return {
        "id": node_id,
        "author": {"role": role, "name": extra.pop("name", None), "metadata": {}},
        "create_time": at,
        "update_time": None,
        "content": {"content_type": content_type, "parts": [text]},
        "status": "finished_successfully",
        "end_turn": role == "assistant" or None,
        "weight": 1.0,
        "metadata": metadata,
        "recipient": extra.pop("recipient", "all"),
        "channel": None,
    }


def conversation(
    index: int, shape: Shape = Shape(), *, archived: bool = False, start: float = START
) -> dict[str, Any]:
    """One conversation as in `conversations.json`; its shown branch alternates user/assistant.
    Conversation `index` starts `index` seconds after `start`."""
    cid = f"6740{index:08x}-0000-4000-8000-{index:012x}"
    at = start + index
    nodes: list[tuple[str, str | None, dict[str, Any] | None]] = [("root", None, None)]

    def add(node_id: str, parent: str, message: dict[str, Any]) -> str:
        nodes.append((node_id, parent, message))
        return node_id

    last = add(
        "sys",
        "root",
        _message("sys", "system", "", at, metadata={"is_visually_hidden_from_conversation": True}),
    )
    last = add(
        "ctx",
        last,
        _message("ctx", "user", "I like short answers.", at, content_type="user_editable_context"),
    )
    for turn in range(shape.turns):
        t = at + turn * 60
        question = add(
            f"q{turn}", last, _message(f"q{turn}", "user", _text(index + turn, shape.words), t + 1)
        )
        last = question
        if turn == 0:  # a tool call and its output before the first answer
            last = add(
                "call",
                last,
                _message(
                    "call",
                    "assistant",
                    "search('fox')",
                    t + 2,
                    content_type="code",
                    recipient="browser",
                ),
            )
            last = add(
                "out",
                last,
                _message(
                    "out",
                    "tool",
                    "results: ...",
                    t + 3,
                    name="browser",
                    content_type="execution_output",
                ),
            )
            last = add("blank", last, _message("blank", "assistant", "", t + 4))
        if turn == shape.turns - 1:  # an abandoned regenerated answer, a sibling branch
            add("alt", last, _message("alt", "assistant", "An answer replaced by another.", t + 5))
        last = add(
            f"a{turn}",
            last,
            _message(f"a{turn}", "assistant", _text(index * 31 + turn, shape.words), t + 6),
        )
    mapping: dict[str, Any] = {}
    for node_id, parent, message in nodes:
        mapping[node_id] = {"id": node_id, "message": message, "parent": parent, "children": []}
        if parent is not None:
            mapping[parent]["children"].append(node_id)
    return {
        "title": f"Chat number {index}",
        "create_time": at,
        "update_time": at + shape.turns * 60 + 10,
        "mapping": mapping,
        "moderation_results": [],
        "current_node": last,
        "plugin_ids": None,
        "conversation_id": cid,
        "conversation_template_id": None,
        "gizmo_id": None,
        "is_archived": archived,
        "safe_urls": [],
        "default_model_slug": "gpt-4o",
        "id": cid,
    }


def conversations(
    count: int, shape: Shape = Shape(), *, start: float = START
) -> Iterator[dict[str, Any]]:
    for index in range(count):
        yield conversation(index, shape, archived=index % 10 == 9, start=start)


def write_export(path: Path, count: int, shape: Shape = Shape(), *, start: float = START) -> int:
    """`conversations.json` with `count` conversations, written as a stream; its size."""
    with open(path, "w", encoding="utf-8") as out:
        out.write("[")
        for index, item in enumerate(conversations(count, shape, start=start)):
            out.write(("," if index else "") + json.dumps(item, ensure_ascii=False))
        out.write("]")
    return path.stat().st_size


def write_export_of_size(path: Path, min_bytes: int, shape: Shape = Shape()) -> tuple[int, int]:
    """`conversations.json` of at least `min_bytes`; (conversations, size)."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        out.write("[")
        while out.tell() < min_bytes:
            item = conversation(count, shape, archived=count % 10 == 9)
            out.write(("," if count else "") + json.dumps(item, ensure_ascii=False))
            count += 1
        out.write("]")
    return count, path.stat().st_size


def write_zip(path: Path, json_path: Path) -> int:
    """ChatGPT's zip: conversations.json beside the other files it sends."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("user.json", json.dumps({"id": "user-1", "email": "a@example.com"}))
        archive.writestr("chat.html", "<html><body>Your chats</body></html>")
        archive.write(json_path, "conversations.json")
        archive.writestr("message_feedback.json", "[]")
    return path.stat().st_size

"""ChatGPT's export format: one conversation of `conversations.json` read as a tree of nodes.

A conversation's `mapping` holds every node ChatGPT kept (each edit and regenerated answer is
a sibling branch), linked by `parent`; `current_node` is the leaf the user last saw. Besides
what the user and the model said, the tree holds plumbing no one was shown: hidden system
messages (custom instructions, context), tool calls and their output (browsing, code, image
generation), reasoning summaries and empty placeholder nodes. `read_nodes` keeps every node and
says of each whether it is a chat message and, if not, why; `to_messages` is the one place
where nodes become the messages stored: every branch, each message under its nearest ancestor
that is one (plumbing between a question and its answer drops out of the path), the
conversation opening on the message `current_node` leads to.
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from backend.core.config import settings
from backend.schemas import ExportConversation, ExportMessage

# Why a node is not a chat message, as the import's report says it.
HIDDEN_SYSTEM = "hidden system messages"
TOOL = "tool calls and tool output"
EMPTY = "empty messages"
SHORTENED = f"messages shortened to {settings.MAX_MESSAGE_CHARS * 4:,} characters"

# Content types that are never a message shown as text in the conversation.
_PLUMBING_CONTENT = {
    "code",
    "execution_output",
    "tether_browsing_display",
    "tether_quote",
    "system_error",
    "user_editable_context",
    "model_editable_context",
    "thoughts",
    "reasoning_recap",
    "sonic_webpage",
    "computer_output",
}
_MAX_CHARS = settings.MAX_MESSAGE_CHARS * 4
_EPOCH = datetime.fromtimestamp(0, UTC)


class NotAConversation(ValueError):
    """An item of the list that is not a ChatGPT conversation; the message says why."""


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    parent: str | None
    role: str | None
    text: str
    created_at: datetime | None
    model: str | None
    # None for a message the user saw; else why it is not one (a reason above).
    skip: str | None


@dataclass(slots=True)
class SourceConversation:
    source_id: str
    title: str | None
    created_at: datetime | None
    updated_at: datetime | None
    archived: bool
    current_node: str | None
    nodes: dict[str, Node] = field(default_factory=dict)


def timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC) if value is not None else None
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def clean(text: str) -> str:
    """Text any store keeps: no NUL, no lone surrogate (a JSON escape can make one)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _text(content: dict[str, Any]) -> str:
    parts = content.get("parts")
    if isinstance(parts, list):
        # multimodal_text mixes strings with image and file pointers: the strings are the text.
        return "\n".join(p for p in parts if isinstance(p, str))
    text = content.get("text")
    return text if isinstance(text, str) else ""


def _obj(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: a malformed field is no field."""
    return value if isinstance(value, dict) else {}


def _why_skipped(message: dict[str, Any], role: str | None, text: str) -> str | None:
    content_type = _obj(message.get("content")).get("content_type")
    if role == "tool" or (role == "assistant" and message.get("recipient", "all") != "all"):
        return TOOL
    if isinstance(content_type, str) and content_type in _PLUMBING_CONTENT:
        return HIDDEN_SYSTEM if role in ("system", "user") else TOOL
    hidden = _obj(message.get("metadata")).get("is_visually_hidden_from_conversation")
    if role not in ("user", "assistant") or hidden:
        return HIDDEN_SYSTEM
    return EMPTY if not text.strip() else None


def read_node(node_id: str, raw: Any) -> Node:
    node = _obj(raw)
    parent = node.get("parent")
    parent_id = parent if isinstance(parent, str) else None
    message = node.get("message")
    if not isinstance(message, dict):  # the root and other structural nodes carry nothing
        return Node(node_id, parent_id, None, "", None, None, EMPTY)
    author_role = _obj(message.get("author")).get("role")
    role = author_role if isinstance(author_role, str) else None
    text = clean(_text(_obj(message.get("content")))).strip()
    model = _obj(message.get("metadata")).get("model_slug")
    return Node(
        id=node_id,
        parent=parent_id,
        role=role,
        text=text,
        created_at=timestamp(message.get("create_time")),
        model=model[:128] if isinstance(model, str) and model else None,
        skip=_why_skipped(message, role, text),
    )


def read_nodes(mapping: dict[str, Any]) -> Iterator[Node]:
    for node_id, raw in mapping.items():
        yield read_node(str(node_id), raw)


def read_conversation(item: Any) -> SourceConversation:
    """One item of `conversations.json`, or NotAConversation saying what is missing."""
    if not isinstance(item, dict):
        raise NotAConversation("not an object")
    source_id = item.get("conversation_id") or item.get("id")
    if not isinstance(source_id, str) or not source_id.strip():
        raise NotAConversation("no conversation id")
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        raise NotAConversation("no mapping of messages")
    title = clean(item["title"]).strip()[:200] if isinstance(item.get("title"), str) else ""
    current = item.get("current_node")
    return SourceConversation(
        source_id=source_id.strip()[:64],
        title=title or None,
        created_at=timestamp(item.get("create_time")),
        updated_at=timestamp(item.get("update_time")),
        archived=item.get("is_archived") is True,
        current_node=current if isinstance(current, str) else None,
        nodes={node.id: node for node in read_nodes(mapping)},
    )


def shown_branch(conversation: SourceConversation) -> list[Node]:
    """The nodes from the root to `current_node`, oldest first. Without a usable current node:
    the branch ending at the newest leaf (what ChatGPT would open on)."""
    nodes = conversation.nodes
    leaf = conversation.current_node
    if leaf not in nodes:
        children = {node.parent for node in nodes.values()}
        leaves = [node for node in nodes.values() if node.id not in children]
        newest = max(leaves, key=lambda n: n.created_at or _EPOCH, default=None)
        leaf = newest.id if newest else None
    branch: list[Node] = []
    seen: set[str] = set()
    while leaf is not None and leaf in nodes and leaf not in seen:
        seen.add(leaf)
        branch.append(nodes[leaf])
        leaf = nodes[leaf].parent
    return branch[::-1]


def _in_tree_order(conversation: SourceConversation) -> list[Node]:
    """Every node, parents before children, siblings oldest first (a cycle or a parent that
    is not in the mapping makes a node a root)."""
    nodes = conversation.nodes
    children: dict[str | None, list[Node]] = {}
    for node in nodes.values():
        parent = node.parent if node.parent in nodes and node.parent != node.id else None
        children.setdefault(parent, []).append(node)
    for siblings in children.values():
        siblings.sort(key=lambda n: (n.created_at or _EPOCH, n.id))
    ordered: list[Node] = []
    seen: set[str] = set()
    todo = list(reversed(children.get(None, [])))
    while todo:
        node = todo.pop()
        if node.id in seen:
            continue
        seen.add(node.id)
        ordered.append(node)
        todo.extend(reversed(children.get(node.id, [])))
    # Nodes only reachable through a cycle: kept, after the rest, as roots.
    ordered += [n for n in nodes.values() if n.id not in seen]
    return ordered


def _nearest_kept(node: Node, conversation: SourceConversation, kept: set[str]) -> str | None:
    nodes, seen = conversation.nodes, {node.id}
    parent = node.parent
    while parent is not None and parent in nodes and parent not in seen:
        if parent in kept:
            return parent
        seen.add(parent)
        parent = nodes[parent].parent
    return None


def to_messages(
    conversation: SourceConversation,
) -> tuple[list[ExportMessage], str | None, Counter[str]]:
    """The messages stored for a conversation (every branch, each naming its parent), the one
    it opens on, and what was left out, by reason."""
    skipped: Counter[str] = Counter()
    ordered = _in_tree_order(conversation)
    kept = {node.id for node in ordered if node.skip is None}
    messages: list[ExportMessage] = []
    written: set[str] = set()
    for node in ordered:
        if node.skip is not None:
            if node.role is not None:  # structural nodes (the root) are no one's message
                skipped[node.skip] += 1
            continue
        text = node.text
        if len(text) > _MAX_CHARS:
            text = text[:_MAX_CHARS]
            skipped[SHORTENED] += 1
        role: Literal["user", "assistant"] = "user" if node.role == "user" else "assistant"
        parent = _nearest_kept(node, conversation, kept)
        messages.append(
            ExportMessage(
                uuid=node.id[:64],
                parent_uuid=parent[:64] if parent in written else None,
                role=role,
                content=text,
                model=node.model,
                created_at=node.created_at,
            )
        )
        written.add(node.id)
    shown = [node.id for node in shown_branch(conversation) if node.id in written]
    return messages, (shown[-1][:64] if shown else None), skipped


def to_export(item: Any) -> tuple[ExportConversation, Counter[str]]:
    """One item of `conversations.json` as the conversation imported, and what it left out."""
    conversation = read_conversation(item)
    messages, shown, skipped = to_messages(conversation)
    exported = ExportConversation(
        uuid=conversation.source_id,
        title=conversation.title,
        archived=conversation.archived,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        messages=messages,
        current_message_uuid=shown,
    )
    return exported, skipped

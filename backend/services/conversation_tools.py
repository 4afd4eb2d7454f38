"""A conversation's tool settings and state: approval mode, status, tools summary."""

from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.mcp import runtime as mcp_runtime
from backend.models import Message, ToolExecution
from backend.services import tools
from backend.services.conversations import Owner, get_owned_conversation

ApprovalMode = Literal["ask", "auto"]


def approval_mode(tool_approval: bool) -> ApprovalMode:
    return "ask" if tool_approval else "auto"


def set_approval_mode(
    *, session: Session, owner: Owner, conversation_uuid: str, mode: ApprovalMode
) -> dict[str, Any]:
    """`ask`: every call waits for the user; `auto`: tools the admin lets run automatically
    (and the built-in ones) run at once, the others still ask."""
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    conversation.tool_approval = mode == "ask"
    session.commit()
    return {"conversation_uuid": conversation.uuid, "approval_mode": mode}


def _tools_of(username: str | None) -> list[dict[str, Any]]:
    health = mcp_runtime.registry.status()
    return [
        {
            "name": tool.name,
            "server": tool.server,
            "server_healthy": bool(health.get(tool.server, {}).get("healthy"))
            if tool.server
            else True,
            "policy": tool.policy or "auto",
        }
        for tool in tools.available_tools(username=username)
    ]


def status(*, session: Session, owner: Owner, conversation_uuid: str) -> dict[str, Any]:
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    counts = dict(
        session.execute(
            select(Message.role, func.count())
            .where(Message.conversation_id == conversation.id)
            .group_by(Message.role)
        ).all()
    )
    last_model = session.scalar(
        select(Message.model)
        .where(Message.conversation_id == conversation.id, Message.model.is_not(None))
        .order_by(Message.position.desc())
        .limit(1)
    )
    username = owner.user.username if owner.user else None
    servers = mcp_runtime.registry.status()
    return {
        "conversation_uuid": conversation.uuid,
        "model": last_model,
        "tools_enabled": conversation.tools_enabled,
        "approval_mode": approval_mode(conversation.tool_approval),
        "message_counts": {
            "total": sum(counts.values()),
            "user": counts.get("user", 0),
            "assistant": counts.get("assistant", 0),
        },
        "tools": _tools_of(username) if conversation.tools_enabled else [],
        "servers": {name: {"healthy": s["healthy"]} for name, s in servers.items()},
    }


def summary(*, session: Session, owner: Owner, conversation_uuid: str) -> dict[str, Any]:
    """The tools available here and how each has been used in this conversation."""
    conversation = get_owned_conversation(session=session, owner=owner, uuid=conversation_uuid)
    rows = session.execute(
        select(ToolExecution.tool_name, ToolExecution.status, func.count())
        .where(ToolExecution.conversation_id == conversation.id)
        .group_by(ToolExecution.tool_name, ToolExecution.status)
    ).all()
    usage: dict[str, dict[str, int]] = {}
    for name, state, count in rows:
        usage.setdefault(name, {})[state] = count
    username = owner.user.username if owner.user else None
    return {
        "conversation_uuid": conversation.uuid,
        "approval_mode": approval_mode(conversation.tool_approval),
        "tools": [t | {"calls": usage.get(t["name"], {})} for t in _tools_of(username)],
        "total_calls": sum(sum(v.values()) for v in usage.values()),
    }

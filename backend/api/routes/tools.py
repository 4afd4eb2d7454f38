"""Built-in tools: the catalogue, a conversation's tool-call log, approving and rejecting."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from backend.api.answers import continue_after_decision
from backend.api.deps import AdminUser, CurrentOwner, CurrentUser
from backend.api.params import Offset
from backend.api.routes.messages import ANSWER_RESPONSES
from backend.core.db import run_in_session
from backend.schemas import ToolDecision, ToolExecutionsPublic, ToolsPublic, ToolTurnPublic
from backend.services import conversation_tools, external_tools, tools

router = APIRouter(tags=["tools"])


@router.get("/tools", response_model=ToolsPublic)
async def list_tools(user: CurrentUser) -> ToolsPublic:
    """The tools offered to the model for this user: built-in, then MCP (`server__tool`)."""
    return ToolsPublic(data=tools.available_tools(username=user.username))


@router.get("/conversations/{uuid}/tool-executions", response_model=ToolExecutionsPublic)
async def list_tool_executions(
    owner: CurrentOwner,
    uuid: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> ToolExecutionsPublic:
    """Every tool call of the conversation, oldest first: the audit log."""
    return await run_in_session(
        tools.list_executions, owner=owner, conversation_uuid=uuid, limit=limit, offset=offset
    )


async def _decide(
    request: Request,
    owner: CurrentOwner,
    uuid: str,
    execution: str,
    approve: bool,
    body: ToolDecision | None = None,
) -> ToolTurnPublic | StreamingResponse:
    decision = await external_tools.decide_call(
        owner=owner,
        conversation_uuid=uuid,
        execution_uuid=execution,
        approve=approve,
        arguments=body.arguments if body else None,
        reason=body.reason if body else None,
    )
    assert owner.user is not None
    return await continue_after_decision(
        request, decision, user_id=owner.user.id, username=owner.user.username
    )


@router.post(
    "/conversations/{uuid}/tool-executions/{execution_uuid}/approve",
    status_code=201,
    response_model=ToolTurnPublic,
    responses={**ANSWER_RESPONSES, 409: {"description": "Already decided"}},
)
async def approve_tool_call(
    request: Request,
    owner: CurrentOwner,
    uuid: str,
    execution_uuid: str,
    body: ToolDecision | None = None,
) -> ToolTurnPublic | StreamingResponse:
    """Run a pending call, with `arguments` if given (edit, then approve); the model then
    answers with its result (JSON or SSE)."""
    return await _decide(request, owner, uuid, execution_uuid, True, body)


@router.post(
    "/conversations/{uuid}/tool-executions/{execution_uuid}/reject",
    status_code=201,
    response_model=ToolTurnPublic,
    responses={**ANSWER_RESPONSES, 409: {"description": "Already decided"}},
)
async def reject_tool_call(
    request: Request,
    owner: CurrentOwner,
    uuid: str,
    execution_uuid: str,
    body: ToolDecision | None = None,
) -> ToolTurnPublic | StreamingResponse:
    """Refuse a pending call, with a `reason` the model is told; the model then answers
    without it (JSON or SSE)."""
    return await _decide(request, owner, uuid, execution_uuid, False, body)


class ApprovalModeBody(BaseModel):
    approval_mode: conversation_tools.ApprovalMode


@router.put("/conversations/{uuid}/approval_mode")
async def put_approval_mode(owner: CurrentOwner, uuid: str, body: ApprovalModeBody) -> dict:
    """`ask` for every tool call, or `auto`: tools the admin allows to run automatically do."""
    return await run_in_session(
        conversation_tools.set_approval_mode,
        owner=owner,
        conversation_uuid=uuid,
        mode=body.approval_mode,
    )


@router.get("/conversations/{uuid}/status")
async def conversation_status(owner: CurrentOwner, uuid: str) -> dict:
    """Model, message counts, approval mode, and the tools available with their servers'
    health."""
    return await run_in_session(conversation_tools.status, owner=owner, conversation_uuid=uuid)


@router.get("/conversations/{uuid}/tools")
async def conversation_tools_summary(owner: CurrentOwner, uuid: str) -> dict:
    """The tools available in the conversation and how often each was called, by outcome."""
    return await run_in_session(conversation_tools.summary, owner=owner, conversation_uuid=uuid)


@router.get("/admin/tool-executions")
async def audit_tool_executions(
    admin: AdminUser,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
    server: Annotated[str | None, Query(max_length=32)] = None,
    username: Annotated[str | None, Query(max_length=64)] = None,
) -> dict:
    """Every user's tool calls, newest first, optionally for one MCP server or user."""
    return await run_in_session(
        tools.list_all_executions, limit=limit, offset=offset, server=server, username=username
    )

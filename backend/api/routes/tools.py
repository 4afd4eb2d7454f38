"""Built-in tools: the catalogue, a conversation's tool-call log, approving and rejecting."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from backend.api.answers import continue_after_decision
from backend.api.deps import CurrentOwner, CurrentUser
from backend.api.params import Offset
from backend.api.routes.messages import ANSWER_RESPONSES
from backend.core.db import run_in_session
from backend.schemas import ToolExecutionsPublic, ToolsPublic, ToolTurnPublic
from backend.services import tools

router = APIRouter(tags=["tools"])


@router.get("/tools", response_model=ToolsPublic)
async def list_tools(user: CurrentUser) -> ToolsPublic:
    """The built-in tools offered to the model (JSON Schema parameters)."""
    return ToolsPublic(data=list(tools.TOOLS.values()))


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


async def _decide(request: Request, owner: CurrentOwner, uuid: str, execution: str, approve: bool):  # noqa: ANN202
    decision = await run_in_session(
        tools.decide, owner=owner, conversation_uuid=uuid, execution_uuid=execution, approve=approve
    )
    assert owner.user is not None
    return await continue_after_decision(request, decision, user_id=owner.user.id)


@router.post(
    "/conversations/{uuid}/tool-executions/{execution_uuid}/approve",
    status_code=201,
    response_model=ToolTurnPublic,
    responses={**ANSWER_RESPONSES, 409: {"description": "Already decided"}},
)
async def approve_tool_call(
    request: Request, owner: CurrentOwner, uuid: str, execution_uuid: str
) -> ToolTurnPublic | StreamingResponse:
    """Run a pending call; the model then answers with its result (JSON or SSE)."""
    return await _decide(request, owner, uuid, execution_uuid, True)


@router.post(
    "/conversations/{uuid}/tool-executions/{execution_uuid}/reject",
    status_code=201,
    response_model=ToolTurnPublic,
    responses={**ANSWER_RESPONSES, 409: {"description": "Already decided"}},
)
async def reject_tool_call(
    request: Request, owner: CurrentOwner, uuid: str, execution_uuid: str
) -> ToolTurnPublic | StreamingResponse:
    """Refuse a pending call; the model then answers without it (JSON or SSE)."""
    return await _decide(request, owner, uuid, execution_uuid, False)

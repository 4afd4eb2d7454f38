"""Running MCP tool calls outside any transaction.

`tools.log_call` and `tools.decide` only store decisions; a call of an MCP tool that may run
is left `running`, and these functions run it through the registry (its timeout and size
limit apply) and then store the outcome in a second short transaction, so no database work
waits for a tool.
"""

import json
import time
from dataclasses import replace
from typing import Any

from backend.core.db import run_in_session
from backend.llm.tool_calls import ToolCall
from backend.mcp import runtime as mcp_runtime
from backend.mcp.connection import CallOutcome
from backend.schemas import ToolExecutionPublic
from backend.services import tools
from backend.services.chat import ChatTurn
from backend.services.conversations import Owner


async def _outcome(execution: ToolExecutionPublic, *, username: str | None) -> CallOutcome:
    tool = mcp_runtime.registry.find(execution.tool_name, username=username)
    if tool is None:
        return CallOutcome("failed", f"The tool {execution.tool_name!r} is not available")
    arguments: Any = execution.arguments
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return CallOutcome("failed", "The arguments are not valid JSON")
    if not isinstance(arguments, dict):
        return CallOutcome("failed", "The arguments must be a JSON object")
    return await mcp_runtime.registry.call(tool, arguments)


async def run_execution(
    execution: ToolExecutionPublic, *, username: str | None
) -> ToolExecutionPublic:
    """Run a `running` execution and store its outcome; others are returned as they are."""
    if execution.status != "running":
        return execution
    started = time.perf_counter()
    outcome = await _outcome(execution, username=username)
    return await run_in_session(
        tools.record_outcome,
        execution_uuid=execution.uuid,
        status=outcome.status,
        result=outcome.text,
        duration_ms=max(0, round((time.perf_counter() - started) * 1000)),
    )


async def username_of(user_id: int) -> str | None:
    from backend.models import User

    def name(*, session: Any) -> str | None:
        user = session.get(User, user_id)
        return user.username if user else None

    return await run_in_session(name)


async def propose(
    *, turn: ChatTurn, user_id: int, call: ToolCall, approval: bool
) -> ToolExecutionPublic:
    """Log a proposed call; run it now if it may run without asking."""
    execution = await run_in_session(
        tools.log_call, turn=turn, user_id=user_id, call=call, approval=approval
    )
    if execution.status != "running":
        return execution
    return await run_execution(execution, username=await username_of(user_id))


async def decide_call(
    *,
    owner: Owner,
    conversation_uuid: str,
    execution_uuid: str,
    approve: bool,
    arguments: dict[str, Any] | None = None,
    reason: str | None = None,
) -> tools.Decision:
    """Approve (and run) or reject a pending call, whichever kind of tool it is."""
    decision = await run_in_session(
        tools.decide,
        owner=owner,
        conversation_uuid=conversation_uuid,
        execution_uuid=execution_uuid,
        approve=approve,
        arguments=arguments,
        reason=reason,
    )
    if decision.execution.status != "running":
        return decision
    username = owner.user.username if owner.user else None
    execution = await run_execution(decision.execution, username=username)
    arguments_text = (
        json.dumps(execution.arguments)
        if isinstance(execution.arguments, dict)
        else execution.arguments
    )
    call_id = decision.call_messages[0]["tool_calls"][0]["id"]
    messages = tools.call_messages(
        call_id=call_id,
        name=execution.tool_name,
        arguments=arguments_text,
        result=execution.result or "",
    )
    return replace(decision, execution=execution, call_messages=messages)

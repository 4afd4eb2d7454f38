"""Search in the caller's own messages and conversation titles."""

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import CurrentUser
from backend.core.db import run_in_session
from backend.schemas import SearchResults
from backend.services import search

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchResults)
async def search_messages(
    user: CurrentUser,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words; all must occur")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1000)] = 0,
    include_archived: bool = True,
) -> SearchResults:
    """Ranked hits (titles first when they match) with highlighted snippets."""
    return await run_in_session(
        search.search,
        user_id=user.id,
        q=q,
        limit=limit,
        offset=offset,
        include_archived=include_archived,
    )

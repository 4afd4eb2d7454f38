"""Administration: provider connections (base URL, key, the models users may pick), and a
test that lists a provider's models."""

import logging

from fastapi import APIRouter, HTTPException, status
from sqlalchemy.orm import Session

from backend.api.deps import AdminUser
from backend.core.db import run_in_session
from backend.llm import client as llm
from backend.llm.client import LLMError, Provider
from backend.schemas import (
    ConnectionCreate,
    ConnectionPublic,
    ConnectionsPublic,
    ConnectionTest,
    ConnectionUpdate,
    MessageOut,
    ProviderModelsPublic,
)
from backend.services import connections
from backend.services.errors import Unprocessable

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/admin/connections", tags=["admin"])


@router.get("", response_model=ConnectionsPublic)
async def list_connections(admin: AdminUser) -> ConnectionsPublic:
    return await run_in_session(connections.list_connections)


@router.post("", response_model=ConnectionPublic, status_code=status.HTTP_201_CREATED)
async def create_connection(admin: AdminUser, body: ConnectionCreate) -> ConnectionPublic:
    return await run_in_session(connections.create_connection, body=body)


@router.patch("/{connection_id}", response_model=ConnectionPublic)
async def update_connection(
    admin: AdminUser, connection_id: int, body: ConnectionUpdate
) -> ConnectionPublic:
    return await run_in_session(
        connections.update_connection, connection_id=connection_id, body=body
    )


@router.delete("/{connection_id}", response_model=MessageOut)
async def delete_connection(admin: AdminUser, connection_id: int) -> MessageOut:
    await run_in_session(connections.delete_connection, connection_id=connection_id)
    return MessageOut(message="Connection removed")


def _provider_to_test(*, session: Session, body: ConnectionTest) -> Provider:
    """The URL and key to try: as given, or a stored connection's where none are given."""
    stored = (
        connections.get_connection(session=session, connection_id=body.connection_id)
        if body.connection_id
        else None
    )
    base_url = body.base_url or (stored.base_url if stored else None)
    if not base_url:
        raise Unprocessable("Give a base URL to test.")
    connections.check_admin_url(base_url)
    key = body.api_key if body.api_key is not None else (stored.api_key if stored else None)
    return connections.provider_for(base_url=base_url, api_key=key)


@router.post("/test", response_model=ProviderModelsPublic)
async def test_connection(admin: AdminUser, body: ConnectionTest) -> ProviderModelsPublic:
    """Lists the provider's models: the URL and key work, and these are the names to offer."""
    provider = await run_in_session(_provider_to_test, body=body)
    try:
        models = await llm.list_models(provider=provider)
    except LLMError as error:
        logger.warning("connection_test_failed", extra=error.log_fields())
        raise HTTPException(error.status_code, error.detail) from error
    return ProviderModelsPublic(models=models)

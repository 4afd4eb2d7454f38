"""All API routers, under /api."""

from fastapi import APIRouter

from backend.api.routes import (
    admin,
    archive,
    auth,
    connections,
    conversations,
    folders,
    health,
    imports,
    mcp,
    mcp_oauth,
    messages,
    models,
    privacy,
    search,
    settings,
    snapshots,
    temporary,
    tools,
    transfer,
    usage,
)

api_router = APIRouter(prefix="/api")
api_router.include_router(auth.router)
api_router.include_router(conversations.router)
api_router.include_router(messages.router)
api_router.include_router(settings.router)
api_router.include_router(models.router)
api_router.include_router(admin.router)
api_router.include_router(connections.router)
api_router.include_router(health.router)
api_router.include_router(usage.router)
api_router.include_router(search.router)
api_router.include_router(folders.router)
api_router.include_router(tools.router)
api_router.include_router(snapshots.router)
api_router.include_router(transfer.router)
api_router.include_router(imports.router)
api_router.include_router(archive.router)
api_router.include_router(mcp.router)
api_router.include_router(mcp_oauth.router)
api_router.include_router(temporary.router)
api_router.include_router(privacy.router)

"""The built-in mock model's OpenAI-compatible API over HTTP, for other clients to try.

Included only in mock mode, and behind the same sign-in as the rest of the API (a bearer
token, or the session cookie with its CSRF token for unsafe requests): it answers anyone's
prompts with this server's CPU, and has nothing to offer when a real provider answers.
The service itself never goes through here; it reaches the mock in process.
"""

from fastapi import APIRouter, Depends

from backend.api.deps import get_current_user
from backend.llm import mock

router = APIRouter(
    prefix="/mock-openai/v1",
    tags=["mock model"],
    include_in_schema=False,
    dependencies=[Depends(get_current_user)],
)
router.add_api_route(
    "/chat/completions", mock.chat_completions, methods=["POST"], response_model=None
)
router.add_api_route("/models", mock.list_models, methods=["GET"], response_model=None)

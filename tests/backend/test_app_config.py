"""Settings: secret key policy, mock default, list parsing."""

import pytest
from pydantic import ValidationError

from backend.core.config import DEVELOPMENT_SECRET_KEY, Settings


@pytest.mark.parametrize("environment", ["production", "test"])
def test_default_secret_key_is_refused_outside_development(environment: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(ENVIRONMENT=environment, SECRET_KEY=DEVELOPMENT_SECRET_KEY)


def test_default_secret_key_only_warns_in_development() -> None:
    settings = Settings(ENVIRONMENT="development", SECRET_KEY=DEVELOPMENT_SECRET_KEY)
    assert "SECRET_KEY" in (settings.development_secret_warning() or "")
    assert Settings(SECRET_KEY="x" * 32).development_secret_warning() is None


def test_log_level_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", " info")
    assert Settings().LOG_LEVEL == "INFO"


def test_mock_llm_is_the_default_without_a_key() -> None:
    assert Settings(OPENAI_API_KEY=None, MOCK_OPENAI=None).use_mock_llm is True
    assert Settings(OPENAI_API_KEY="sk-x", MOCK_OPENAI=None).use_mock_llm is False
    assert Settings(OPENAI_API_KEY="sk-x", MOCK_OPENAI=True).use_mock_llm is True


def test_admin_username_and_password_come_together() -> None:
    with pytest.raises(ValidationError, match="ADMIN_USERNAME"):
        Settings(ADMIN_USERNAME="root", ADMIN_PASSWORD=None)


def test_available_models_from_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVAILABLE_MODELS", "a, b ,c")
    assert Settings().AVAILABLE_MODELS == ["a", "b", "c"]


def test_secrets_are_not_in_the_repr() -> None:
    text = repr(
        Settings(OPENAI_API_KEY="sk-very-secret", ADMIN_USERNAME="a", ADMIN_PASSWORD="pw-x")
    )
    assert "sk-very-secret" not in text and "pw-x" not in text


def test_secure_cookies_in_production_only_by_default() -> None:
    assert Settings(ENVIRONMENT="production", SECRET_KEY="s" * 32).cookie_secure is True
    assert Settings().cookie_secure is False

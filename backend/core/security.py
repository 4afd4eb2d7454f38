"""Password hashing, session tokens and CSRF tokens."""

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from backend.core.config import settings

MIN_PASSWORD_LENGTH = 8

# argon2id at RFC 9106's low-memory profile (t=3, 64 MiB, p=4): above OWASP's minimum
# (t=2, 19 MiB, p=1). Pinned, so a library upgrade cannot quietly change it. Tests use the
# cheapest legal cost so the suite is not dominated by hashing; never do that anywhere else.
# Hashing runs in backend.core.password_pool, never in a shared pool.
if settings.ENVIRONMENT == "test":
    password_hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
else:
    password_hasher = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4)

# Verifying against this when an account does not exist keeps the answer time the same,
# so timing does not reveal which accounts exist.
_DUMMY_HASH = password_hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def verify_password(password: str, hashed_password: str | None) -> bool:
    try:
        return password_hasher.verify(hashed_password or _DUMMY_HASH, password) and bool(
            hashed_password
        )
    except (VerificationError, InvalidHashError):
        return False


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Sessions are looked up by this digest; the token itself is never stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(session_token: str) -> str:
    """The CSRF token is bound to the session, so a token from another session is useless."""
    return hmac.new(settings.SECRET_KEY.encode(), session_token.encode(), "sha256").hexdigest()


def csrf_token_matches(*, session_token: str, header: str | None, cookie: str | None) -> bool:
    if not header or not cookie:
        return False
    expected = csrf_token_for(session_token)
    return hmac.compare_digest(header, cookie) and hmac.compare_digest(header, expected)

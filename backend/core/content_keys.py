"""Per-user content keys for zero-access conversations: making, wrapping and sealing.

A content key is 256 random bits. It is never stored as it is: the database holds it
wrapped (AES-256-GCM) under a key derived from the user's password (Argon2id with a salt
of its own), under a recovery key shown once, and, per session, under a key derived from
the session token that only the browser holds (the database keeps only the token's SHA-256,
from which this key cannot be derived). Sealed text is `zs1:<key id>:<base64url(nonce +
ciphertext)>`, recognizable without the key, so readers without it show a placeholder.
"""

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backend.core.config import settings

KEY_BYTES = 32
NONCE_BYTES = 12
SALT_BYTES = 16
SEALED_PREFIX = "zs1:"
PLACEHOLDER = "(sealed — only the owner can read this)"
_RECOVERY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed back


class WrongKey(Exception):
    """A wrapped key did not open: wrong password, recovery key or session token."""


@dataclass(frozen=True)
class Argon2Cost:
    time_cost: int
    memory_kib: int
    parallelism: int


# The password hash's own profile (backend/core/security.py): RFC 9106 low-memory; tests use
# the cheapest legal cost, as they do for password hashes, and never anywhere else.
if settings.ENVIRONMENT == "test":
    PASSWORD_COST = Argon2Cost(time_cost=1, memory_kib=1024, parallelism=1)
else:
    PASSWORD_COST = Argon2Cost(time_cost=3, memory_kib=64 * 1024, parallelism=4)


def new_content_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_id(content_key: bytes) -> str:
    """A short public name for the key: tells which key sealed a value, reveals nothing."""
    return hmac.new(content_key, b"openchat/content-key-id", "sha256").hexdigest()[:16]


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)


def _wrap(wrapping_key: bytes, content_key: bytes, *, purpose: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(wrapping_key).encrypt(nonce, content_key, purpose)


def _unwrap(wrapping_key: bytes, wrapped: bytes, *, purpose: bytes) -> bytes:
    try:
        return AESGCM(wrapping_key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], purpose)
    except (InvalidTag, ValueError) as error:
        raise WrongKey from error


def password_key(password: str, salt: bytes, cost: Argon2Cost = PASSWORD_COST) -> bytes:
    """Argon2id of the password under the key's own salt (slow: run it in the password pool)."""
    return hash_secret_raw(
        password.encode(),
        salt,
        time_cost=cost.time_cost,
        memory_cost=cost.memory_kib,
        parallelism=cost.parallelism,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


def wrap_with_password_key(derived: bytes, content_key: bytes) -> bytes:
    return _wrap(derived, content_key, purpose=b"openchat/content-key|password")


def unwrap_with_password_key(derived: bytes, wrapped: bytes) -> bytes:
    return _unwrap(derived, wrapped, purpose=b"openchat/content-key|password")


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(material)


def new_recovery_key() -> str:
    """130 random bits as 26 characters in groups of five: printed or saved once."""
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(26))
    return "-".join(raw[i : i + 5] for i in range(0, len(raw), 5))


def normalize_recovery_key(text: str) -> str:
    """What the user typed back, without spaces, dashes or case (a form of their own)."""
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    return "-".join(raw[i : i + 5] for i in range(0, len(raw), 5))


def _recovery_wrapping_key(recovery_key: str) -> bytes:
    # 130 bits of entropy need no slow hash; HKDF separates it from every other key.
    return _hkdf(normalize_recovery_key(recovery_key).encode(), b"openchat/content-key|recovery")


def wrap_with_recovery_key(recovery_key: str, content_key: bytes) -> bytes:
    return _wrap(_recovery_wrapping_key(recovery_key), content_key, purpose=b"recovery")


def unwrap_with_recovery_key(recovery_key: str, wrapped: bytes) -> bytes:
    return _unwrap(_recovery_wrapping_key(recovery_key), wrapped, purpose=b"recovery")


def _session_wrapping_key(token: str) -> bytes:
    # The sessions table keeps SHA-256(token); HKDF with this label is another function of
    # the token, so the table (with the store and its master key) derives nothing from it.
    return _hkdf(token.encode(), b"openchat/content-key|session")


def wrap_for_session(token: str, content_key: bytes) -> bytes:
    return _wrap(_session_wrapping_key(token), content_key, purpose=b"session")


def unwrap_for_session(token: str, wrapped: bytes) -> bytes:
    return _unwrap(_session_wrapping_key(token), wrapped, purpose=b"session")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- sealing text ---------------------------------------------------------------------------


def is_sealed(value: str | None) -> bool:
    return value is not None and value.startswith(SEALED_PREFIX)


def sealed_key_id(value: str) -> str | None:
    """Which key sealed a value (None when it is not a sealed value)."""
    if not is_sealed(value):
        return None
    return value[len(SEALED_PREFIX) :].split(":", 1)[0]


class Sealer:
    """One key's sealing, set up once (a request seals and opens many values)."""

    __slots__ = ("_aead", "_ident", "key_id")

    def __init__(self, content_key: bytes) -> None:
        self.key_id = key_id(content_key)
        self._ident = self.key_id.encode()
        self._aead = AESGCM(content_key)

    def seal(self, text: str) -> str:
        """The text sealed (AES-256-GCM, fresh nonce, the key id authenticated)."""
        nonce = os.urandom(NONCE_BYTES)
        body = nonce + self._aead.encrypt(nonce, text.encode(), self._ident)
        return f"{SEALED_PREFIX}{self.key_id}:{base64.urlsafe_b64encode(body).decode().rstrip('=')}"

    def open(self, sealed: str) -> str:
        """The text a sealed value holds; WrongKey if sealed under another key, or altered."""
        ident, _, encoded = sealed[len(SEALED_PREFIX) :].partition(":")
        if ident != self.key_id:
            raise WrongKey
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            plain = self._aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], self._ident)
        except (InvalidTag, ValueError) as error:
            raise WrongKey from error
        return plain.decode()


def seal_text(content_key: bytes, text: str) -> str:
    return Sealer(content_key).seal(text)


def open_text(content_key: bytes, sealed: str) -> str:
    return Sealer(content_key).open(sealed)

"""AES-256-GCM sealing with associated data.

Every ciphertext is ``nonce (12 bytes) || ciphertext+tag`` under a fresh random
nonce. The associated data names what the plaintext claims to be (store,
table, key, version), so a ciphertext moved, swapped or replayed elsewhere
fails to authenticate instead of decrypting to the wrong row.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from deltadb_dialect.errors import TamperError

NONCE_BYTES = 12
TAG_BYTES = 16


class Sealer:
    """One AES-GCM key, reused for many messages (the AESGCM object is costly to build)."""

    __slots__ = ("_aead", "key_id")

    def __init__(self, key: bytes, key_id: int) -> None:
        self._aead = AESGCM(key)
        self.key_id = key_id

    def __repr__(self) -> str:
        return f"Sealer(key_id={self.key_id}, key=<hidden>)"

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def encryptor(self) -> Any:
        """The bound ``encrypt(nonce, plaintext, aad)`` of this key, for callers that seal
        many items in one loop; each call must get its own fresh random nonce (the caller
        prepends it, as ``seal`` does)."""
        return self._aead.encrypt

    def open(self, sealed: bytes, aad: bytes, *, what: str) -> bytes:
        if len(sealed) < NONCE_BYTES + TAG_BYTES:
            raise TamperError(f"{what}: ciphertext is truncated")
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except InvalidTag:
            raise TamperError(
                f"{what} failed to authenticate: the store was modified, corrupted, "
                "or a file was swapped or restored from an older copy"
            ) from None

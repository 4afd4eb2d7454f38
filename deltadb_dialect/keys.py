"""Master keys and data keys (envelope encryption).

The master key (256 bits) comes from the environment, a key file or a
passphrase stretched with Argon2id. It never encrypts rows: it only wraps the
store's data keys, so rotating it means re-wrapping a few keys, not rewriting
every row. Key material is never logged; ``repr`` of a key holder hides it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from argon2.low_level import Type, hash_secret_raw

from deltadb_dialect.errors import KeyMissingError

if TYPE_CHECKING:  # for annotations only: the functions below import crypto where they use it
    from deltadb_dialect.crypto import Sealer

MASTER_KEY_ENV = "DELTADB_MASTER_KEY"
KEY_BYTES = 32

# Argon2id parameters for passphrases: RFC 9106's second recommended option
# (memory-hard, 64 MiB), stored in the store's header so they can be raised later.
DEFAULT_KDF_PARAMS = {"name": "argon2id", "time_cost": 3, "memory_kib": 65536, "parallelism": 4}

HOW_TO_GET_A_KEY = (
    "Create one with `python -m deltadb_dialect keygen --out PATH` and pass it as "
    f"?key_file=PATH in the URL, or set {MASTER_KEY_ENV} to its 64 hex characters, "
    "or give a passphrase as the URL's password (deltadb://:passphrase@/path)."
)


@dataclass(frozen=True)
class MasterKeySource:
    """Where the master key comes from; resolved against the store's header."""

    raw_key: bytes | None = None
    passphrase: str | None = None

    def __repr__(self) -> str:  # never show key material
        kind = "passphrase" if self.passphrase is not None else "raw key"
        return f"MasterKeySource(<{kind} hidden>)"

    def fingerprint(self) -> str:
        """A non-reversible identity, to tell sources apart without holding them twice."""
        material = self.raw_key if self.raw_key is not None else (self.passphrase or "").encode()
        return hashlib.blake2b(material, digest_size=16, person=b"deltadb-fp").hexdigest()


def generate_master_key_hex() -> str:
    return secrets.token_hex(KEY_BYTES)


def parse_key_hex(text: str, *, origin: str) -> bytes:
    cleaned = text.strip()
    if len(cleaned) != 2 * KEY_BYTES:
        raise KeyMissingError(
            f"the master key from {origin} must be {2 * KEY_BYTES} hex characters "
            f"(got {len(cleaned)}). {HOW_TO_GET_A_KEY}"
        )
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise KeyMissingError(
            f"the master key from {origin} is not hexadecimal. {HOW_TO_GET_A_KEY}"
        ) from None


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyMissingError(f"key file {file} does not exist. {HOW_TO_GET_A_KEY}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyMissingError(f"key file {file} cannot be read: {exc.__class__.__name__}") from None
    return parse_key_hex(text, origin=f"key file {file}")


def write_key_file(path: str | os.PathLike[str], key_hex: str) -> Path:
    """Create a key file with mode 0600; never overwrite an existing key."""
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key_hex + "\n")
        out.flush()
        os.fsync(out.fileno())
    return file


def resolve_source(
    *, passphrase: str | None, key_file: str | None, environ: dict[str, str] | None = None
) -> MasterKeySource:
    """Pick the key source: URL passphrase, then key file, then the environment."""
    env = os.environ if environ is None else environ
    if passphrase:
        return MasterKeySource(passphrase=passphrase)
    if key_file:
        return MasterKeySource(raw_key=read_key_file(key_file))
    if env.get(MASTER_KEY_ENV):
        return MasterKeySource(raw_key=parse_key_hex(env[MASTER_KEY_ENV], origin=MASTER_KEY_ENV))
    raise KeyMissingError(f"no master key was given for this DeltaDB store. {HOW_TO_GET_A_KEY}")


_kdf_cache: dict[tuple[str, bytes, tuple], bytes] = {}


def derive_from_passphrase(passphrase: str, salt: bytes, params: dict) -> bytes:
    """Argon2id; memoised per process so reconnecting does not pay the KDF again."""
    signature = (
        hashlib.sha256(passphrase.encode()).hexdigest(),
        salt,
        tuple(sorted(params.items())),
    )
    if signature not in _kdf_cache:
        _kdf_cache[signature] = hash_secret_raw(
            secret=passphrase.encode("utf-8"),
            salt=salt,
            time_cost=int(params["time_cost"]),
            memory_cost=int(params["memory_kib"]),
            parallelism=int(params["parallelism"]),
            hash_len=KEY_BYTES,
            type=Type.ID,
        )
    return _kdf_cache[signature]


def subkey(master: bytes, purpose: str) -> bytes:
    """Independent keys for independent jobs (HKDF-Expand with one block)."""
    return hmac.new(master, b"deltadb/" + purpose.encode() + b"\x01", hashlib.sha256).digest()


class Keyring:
    """The store's unwrapped keys.

    Two levels of wrapping: the master key wraps one random store key (the
    key-encryption key); the store key wraps the data keys and derives the
    naming and header-MAC keys. Rotating the master key re-wraps the store key
    alone, so processes already running keep working and no row is rewritten.
    """

    def __init__(self, *, store_id: bytes, store_key: bytes) -> None:
        from deltadb_dialect.crypto import Sealer

        self.store_id = store_id
        self.store_key = store_key  # kept to re-wrap it when the master key rotates
        self._kek = Sealer(subkey(store_key, "data-key-wrap"), key_id=0)
        self.naming_key = subkey(store_key, "naming")
        self._mac_key = subkey(store_key, "header-mac")
        self._mac = hmac.new(self._mac_key, digestmod=hashlib.sha256)  # keyed once, copied
        self.data: dict[int, Sealer] = {}
        self.active_kid = 0

    def __repr__(self) -> str:
        return f"Keyring(kids={sorted(self.data)}, active={self.active_kid}, keys=<hidden>)"

    def wrap_data_key(self, kid: int, key: bytes) -> bytes:
        return self._kek.seal(key, _aad(self.store_id, f"data-key-{kid}"))

    def add_wrapped_data_key(self, kid: int, wrapped: bytes) -> None:
        from deltadb_dialect.crypto import Sealer

        key = self._kek.open(wrapped, _aad(self.store_id, f"data-key-{kid}"), what="data key")
        self.data[kid] = Sealer(key, key_id=kid)

    def sealer(self, kid: int) -> Sealer:
        from deltadb_dialect.errors import TamperError

        try:
            return self.data[kid]
        except KeyError:
            raise TamperError(
                f"a ciphertext names data key {kid}, which this store does not have"
            ) from None

    @property
    def active(self) -> Sealer:
        return self.data[self.active_kid]

    def header_mac(self, body: bytes) -> str:
        mac = self._mac.copy()
        mac.update(body)
        return mac.hexdigest()


class MasterWrap:
    """What the master key does: wrap the store key, and prove it is the right key."""

    def __init__(self, master: bytes, store_id: bytes) -> None:
        from deltadb_dialect.crypto import Sealer

        self._sealer = Sealer(subkey(master, "store-key-wrap"), key_id=0)
        self._store_id = store_id

    def __repr__(self) -> str:
        return "MasterWrap(<hidden>)"

    def wrap_store_key(self, store_key: bytes) -> bytes:
        return self._sealer.seal(store_key, _aad(self._store_id, "store-key"))

    def unwrap_store_key(self, wrapped: bytes) -> bytes | None:
        """The store key, or None when this master key is not the store's."""
        from deltadb_dialect.errors import TamperError

        try:
            return self._sealer.open(wrapped, _aad(self._store_id, "store-key"), what="store key")
        except TamperError:
            return None


def _aad(store_id: bytes, label: str) -> bytes:
    return b"deltadb/keys|" + store_id + b"|" + label.encode()


def master_key_for(source: MasterKeySource, kdf: dict | None) -> bytes:
    """The 256-bit master key from a source and the header's KDF settings."""
    if source.raw_key is not None:
        if kdf is not None:
            raise KeyMissingError(
                "this store is protected by a passphrase; give it as the URL's password "
                "(deltadb://:passphrase@/path)"
            )
        return source.raw_key
    if kdf is None:
        raise KeyMissingError(
            "this store uses a raw master key, not a passphrase; " + HOW_TO_GET_A_KEY
        )
    assert source.passphrase is not None
    return derive_from_passphrase(source.passphrase, bytes.fromhex(kdf["salt"]), kdf)

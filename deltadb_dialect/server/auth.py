"""Who may do what: the admin key, API keys, and the bearer tokens issued for them.

Tokens are 256 random bits, kept only as their SHA-256, expire after the client TTL, and can
be revoked. Each worker process caches a validated token for a couple of seconds, so a
revocation takes effect at once in the process that handled it and within that window in the
others (documented in docs/SERVER.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, delete, select

from deltadb_dialect.server import tables
from deltadb_dialect.server.engine import read_transaction, write_transaction
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.names import check_database

PERMISSIONS = ("read", "write", "admin")
ALL_PERMISSIONS = frozenset(PERMISSIONS)
API_KEY_PREFIX = "dk"  # DeltaDatabase's prefix for API keys
API_KEY_PREFIXES = ("dk", "ddb")  # ddb_: keys made before the switch to DeltaDatabase's prefix
MAX_DURATION_SECONDS = 100 * 365 * 86400.0
NEVER = "9999-12-31T23:59:59Z"  # the expiry of the admin key used directly as a bearer token
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``90``, ``90s``, ``30m``, ``24h``, ``7d`` or ``2w``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 30m, 24h, 7d)")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("a duration must be a positive number of seconds")
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError("a duration must be at most 100 years")
    return seconds


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    client_id: str
    permissions: frozenset[str]
    expires_at: str
    token_hash: str
    api_key_id: str | None = None
    databases: tuple[str, ...] | None = None  # None: every database
    kind: str = "token"  # "admin" (the admin key itself), "api_key" (a key itself), "token"

    def allows(self, permission: str) -> bool:
        return permission in self.permissions or "admin" in self.permissions

    def may_use(self, db: str) -> bool:
        """Whether this caller's key is scoped to include database ``db``."""
        return pattern_within(db, self.databases)

    def check_database_scope(self, db: str) -> None:
        if not self.may_use(db):
            raise ApiError(403, f"this key may not use database {db!r}")

    def effective_permissions(self) -> frozenset[str]:
        return effective(self.permissions)

    def as_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "permissions": sorted(self.permissions),
            "expires_at": self.expires_at,
            "api_key_id": self.api_key_id,
            "databases": list(self.databases) if self.databases is not None else None,
        }


def effective(permissions: frozenset[str]) -> frozenset[str]:
    """``admin`` implies ``read`` and ``write``."""
    return permissions | {"read", "write"} if "admin" in permissions else permissions


def pattern_within(pattern: str, scope: tuple[str, ...] | None) -> bool:
    """Whether a name (or a ``prefix*``) lies inside ``scope`` (None: every database)."""
    if scope is None:
        return True
    if pattern.endswith("*"):  # a prefix is inside only a prefix that it extends
        stem = pattern[:-1]
        return any(s.endswith("*") and stem.startswith(s[:-1]) for s in scope)
    return any(pattern == s or (s.endswith("*") and pattern.startswith(s[:-1])) for s in scope)


def scope_within(child: tuple[str, ...] | None, parent: tuple[str, ...] | None) -> bool:
    if parent is None:
        return True
    return child is not None and all(pattern_within(p, parent) for p in child)


def check_database_patterns(patterns: Any) -> tuple[str, ...] | None:
    """``databases`` of an API key: names, or prefixes ending in ``*``; None means all."""
    if patterns is None:
        return None
    if not isinstance(patterns, list) or not patterns or not all(
        isinstance(p, str) for p in patterns
    ):
        raise ApiError(400, "databases must be a non-empty list of names (or prefix*)")
    for pattern in patterns:
        stem = pattern[:-1] if pattern.endswith("*") else pattern
        if stem:
            check_database(stem)
    return tuple(patterns)


def check_permissions(names: Any) -> frozenset[str]:
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ApiError(400, f"permissions must be a non-empty list of {', '.join(PERMISSIONS)}")
    unknown = sorted(set(names) - ALL_PERMISSIONS)
    if unknown:
        raise ApiError(400, f"unknown permission(s): {', '.join(unknown)}")
    return frozenset(names)


def _unauthorized(message: str, retry_after: int = 0) -> ApiError:
    headers = {"WWW-Authenticate": "Bearer"}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return ApiError(401, message, headers)


class AuthService:
    """Resolves credentials, in DeltaDatabase's order: the admin key, an API key, a token.

    In development mode (no admin key) a random development token, printed by ``serve`` at
    start, stands in for the admin key; ``{"client_id": NAME}`` logins are accepted only when
    the operator allowed them, and never from a browser page.
    """

    def __init__(
        self,
        engine: Engine,
        admin_key: str | None,
        client_ttl: float = 86400.0,
        cache_seconds: float = 2.0,
        *,
        dev_token: str | None = None,
        allow_client_id_login: bool = False,
        throttle: FailureThrottle | None = None,
    ) -> None:
        self.engine = engine
        self.development_mode = not admin_key
        self.admin_key = admin_key or dev_token or secrets.token_urlsafe(24)
        self.allow_client_id_login = allow_client_id_login and self.development_mode
        self.client_ttl = client_ttl
        self.cache_seconds = cache_seconds
        self.throttle = throttle or FailureThrottle()
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @property
    def _admin_name(self) -> str:
        return "development" if self.development_mode else "admin"

    # ── login / logout ────────────────────────────────────────────────

    def login(self, body: Any, address: str = "unknown", *, from_browser: bool = False
              ) -> dict[str, Any]:
        usage = 'send {"key": "..."} (the admin key, an API key or the development token)'
        if not isinstance(body, dict):
            raise ApiError(400, usage)
        key, client_id = body.get("key"), body.get("client_id")
        if isinstance(key, str) and key:
            principal = self.resolve_key(key, address)
            if principal is None:
                self.throttle.failed(address)
                raise self._failure("invalid or expired key", address)
            return self.issue_token(principal.client_id, principal.permissions,
                                    principal.api_key_id, self._key_expiry(principal),
                                    principal.databases)
        if isinstance(client_id, str) and client_id:
            return self._client_id_login(client_id, from_browser)
        raise ApiError(400, usage)

    def _client_id_login(self, client_id: str, from_browser: bool) -> dict[str, Any]:
        if not self.development_mode:
            raise ApiError(401, "client_id login is only available in development mode; "
                                "log in with an admin or API key")
        if not self.allow_client_id_login:
            raise ApiError(401, "client_id logins are off; log in with the development token "
                                "printed when the server started")
        if from_browser:
            raise ApiError(403, "client_id logins are not accepted from web pages; "
                                "use the development token printed when the server started")
        if len(client_id) > 255 or not client_id.isprintable():
            raise ApiError(400, "client_id must be printable and at most 255 characters")
        return self.issue_token(client_id, ALL_PERMISSIONS)

    @staticmethod
    def _key_expiry(principal: Principal) -> str | None:
        return None if principal.expires_at == NEVER else principal.expires_at

    def issue_token(
        self,
        client_id: str,
        permissions: frozenset[str],
        api_key_id: str | None = None,
        key_expires_at: str | None = None,
        databases: tuple[str, ...] | list[str] | None = None,
        ttl: float | None = None,
    ) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        now = utc_now()
        expires_at = iso(now + dt.timedelta(seconds=ttl or self.client_ttl))
        if key_expires_at is not None:
            expires_at = min(expires_at, key_expires_at)  # a token never outlives its key
        with write_transaction(self.engine) as conn:
            conn.execute(delete(tables.tokens).where(tables.tokens.c.expires_at <= iso(now)))
            conn.execute(tables.tokens.insert().values(
                token_hash=sha256_hex(token), client_id=client_id,
                permissions=json.dumps(sorted(permissions)), api_key_id=api_key_id,
                databases=json.dumps(list(databases)) if databases is not None else None,
                created_at=iso(now), expires_at=expires_at,
            ))
        return {"token": token, "client_id": client_id, "expires_at": expires_at,
                "permissions": sorted(permissions)}

    def logout(self, principal: Principal) -> None:
        if principal.kind != "token":
            raise ApiError(400, "only a token from /api/login can be logged out; "
                                "revoke an API key with DELETE /api/keys/{id}")
        with write_transaction(self.engine) as conn:
            conn.execute(
                delete(tables.tokens).where(tables.tokens.c.token_hash == principal.token_hash)
            )
        with self._lock:
            self._cache.pop(principal.token_hash, None)

    # ── resolving credentials ─────────────────────────────────────────

    def authenticate(self, authorization: str | None, address: str = "unknown") -> Principal:
        """The caller of an ``Authorization: Bearer <admin key | API key | token>`` header."""
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise ApiError(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        return self.authenticate_credential(authorization[7:].strip(), address)

    def authenticate_credential(self, credential: str, address: str = "unknown") -> Principal:
        if not credential:
            raise ApiError(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        token_hash = sha256_hex(credential)
        now = time.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and now - cached[1] < self.cache_seconds:
            principal = cached[0]
        else:
            found = self.resolve_key(credential, address) or self._load_token(token_hash)
            if found is None:
                self.throttle.failed(address)
                raise self._failure("invalid or revoked token", address)
            principal = found
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token_hash] = (principal, now)
        if principal.expires_at <= iso(utc_now()):
            raise _unauthorized("token expired; log in again")
        return principal

    def _failure(self, message: str, address: str) -> ApiError:
        locked_for = self.throttle.locked_for(address)
        if locked_for:
            return _unauthorized(f"{message}; after too many failures from this address the "
                                 f"admin key is not checked for {locked_for} s", locked_for)
        return _unauthorized(message)

    def resolve_key(self, key: str, address: str = "unknown") -> Principal | None:
        """The admin key (or development token) or an API key; None for anything else.

        Session tokens and API keys are 256 random bits; only the admin key may be a phrase a
        person chose. So after too many failures from an address the admin key is no longer
        compared for that address (unless it was accepted from there before), while keys and
        tokens are always checked: a client with a wrong key cannot lock out one with the
        right key, and guessing the admin key costs a throttle window per few guesses.
        """
        digest = sha256_hex(key)
        if ((not self.throttle.locked_for(address) or self.throttle.known(address, digest))
                and hmac.compare_digest(key.encode("utf-8"), self.admin_key.encode("utf-8"))):
            self.throttle.remember(address, digest)
            return Principal(self._admin_name, ALL_PERMISSIONS, NEVER, digest, kind="admin")
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] not in API_KEY_PREFIXES:
            return None
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(tables.api_keys).where(tables.api_keys.c.id == parts[1])
            ).first()
        if (
            row is None
            or not hmac.compare_digest(row.secret_hash, sha256_hex(parts[2]))
            or (row.expires_at is not None and row.expires_at <= iso(utc_now()))
        ):
            return None
        databases = tuple(json.loads(row.databases)) if row.databases else None
        return Principal(row.name, frozenset(json.loads(row.permissions)),
                         row.expires_at or NEVER, digest, row.id, databases, kind="api_key")

    def _load_token(self, token_hash: str) -> Principal | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(tables.tokens).where(tables.tokens.c.token_hash == token_hash)
            ).first()
        if row is None:
            return None
        databases = tuple(json.loads(row.databases)) if row.databases else None
        return Principal(row.client_id, frozenset(json.loads(row.permissions)), row.expires_at,
                         token_hash, row.api_key_id, databases)

    # ── API keys ──────────────────────────────────────────────────────

    def create_api_key(self, body: Any, creator: Principal) -> dict[str, Any]:
        """A new key, never more powerful than ``creator``: its permissions, databases and
        lifetime lie within the creator's own."""
        if not isinstance(body, dict):
            raise ApiError(400, "send {name, permissions, expires_in?, databases?}")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, "name must be a non-empty string of at most 255 characters")
        permissions = check_permissions(body.get("permissions"))
        if not effective(permissions) <= creator.effective_permissions():
            raise ApiError(403, "a key may only grant permissions that it holds itself")
        databases = check_database_patterns(body.get("databases"))
        if databases is None:
            databases = creator.databases  # a scoped key makes keys of its own scope
        if not scope_within(databases, creator.databases):
            raise ApiError(403, "a key may only grant databases within its own scope: "
                                f"{', '.join(creator.databases or ())}")
        expires_at = self._new_key_expiry(body.get("expires_in"), creator)
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = {"id": key_id, "name": name.strip(), "permissions": sorted(permissions),
               "created_at": iso(utc_now()), "expires_at": expires_at,
               "created_by": creator.client_id,
               "databases": list(databases) if databases is not None else None}
        with write_transaction(self.engine) as conn:
            conn.execute(tables.api_keys.insert().values(
                {**row, "permissions": json.dumps(row["permissions"]),
                 "databases": json.dumps(row["databases"]) if databases is not None else None,
                 "secret_hash": sha256_hex(secret)}
            ))
        key = f"{API_KEY_PREFIX}_{key_id}_{secret}"
        return {**row, "key": key, "secret": key}

    def _new_key_expiry(self, expires_in: Any, creator: Principal) -> str | None:
        expires_at = None
        if expires_in is not None:
            if isinstance(expires_in, bool) or not isinstance(expires_in, int | float | str):
                raise ApiError(400, "expires_in must be seconds or a duration such as 30d")
            try:
                seconds = parse_duration(expires_in)
            except ValueError as exc:
                raise ApiError(400, f"expires_in: {exc}") from None
            expires_at = iso(utc_now() + dt.timedelta(seconds=seconds))
        limit = self._creator_key_expiry(creator)
        if limit is not None and (expires_at is None or expires_at > limit):
            expires_at = limit  # a key never outlives the key that made it
        return expires_at

    def _creator_key_expiry(self, creator: Principal) -> str | None:
        if creator.api_key_id is None:
            return None
        with read_transaction(self.engine) as conn:
            found = conn.execute(select(tables.api_keys.c.expires_at).where(
                tables.api_keys.c.id == creator.api_key_id)).first()
        return None if found is None else found[0]

    def list_api_keys(self, viewer: Principal | None = None) -> list[dict[str, Any]]:
        """Every key, or only those within ``viewer``'s database scope."""
        k = tables.api_keys.c
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(k.id, k.name, k.permissions, k.created_at, k.expires_at, k.created_by,
                       k.databases)
                .order_by(k.created_at, k.id)
            ).all()
        keys = [{"id": r.id, "name": r.name, "permissions": json.loads(r.permissions),
                 "created_at": r.created_at, "expires_at": r.expires_at,
                 "created_by": r.created_by, "enabled": True,
                 "databases": json.loads(r.databases) if r.databases else None} for r in rows]
        scope = viewer.databases if viewer is not None else None
        return [key for key in keys if scope_within(
            tuple(key["databases"]) if key["databases"] is not None else None, scope)]

    def delete_api_key(self, key_id: str, viewer: Principal | None = None) -> bool:
        """Delete a key (within ``viewer``'s scope) and revoke every token issued for it."""
        if viewer is not None and viewer.databases is not None and not any(
            key["id"] == key_id for key in self.list_api_keys(viewer)
        ):
            return False
        with write_transaction(self.engine) as conn:
            deleted = conn.execute(
                delete(tables.api_keys).where(tables.api_keys.c.id == key_id)
            ).rowcount
            conn.execute(delete(tables.tokens).where(tables.tokens.c.api_key_id == key_id))
        with self._lock:
            for token_hash, (principal, _) in list(self._cache.items()):
                if principal.api_key_id == key_id:
                    self._cache.pop(token_hash, None)
        return bool(deleted)


class FailureThrottle:
    """Failed credentials counted per client address within a window (per process).

    Past ``max_failures`` in the window the address is *locked*: the admin key is no longer
    compared for it, except a value already accepted from that address (``known``).
    """

    def __init__(self, max_failures: int = 10, window_seconds: float = 60.0,
                 remember_seconds: float = 3600.0) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.remember_seconds = remember_seconds
        self._failures: dict[str, list[float]] = {}
        self._known: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> list[float]:
        recent = [t for t in self._failures.get(address, []) if now - t < self.window]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        return recent

    def locked_for(self, address: str) -> int:
        """Seconds until ``address`` is unlocked; 0 when it is not locked."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent(address, now)
        if len(recent) < self.max_failures:
            return 0
        return max(1, int(self.window - (now - recent[-self.max_failures])) + 1)

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            failures = self._failures.setdefault(address, [])
            failures.append(now)
            del failures[:-self.max_failures]  # bounded: only the last few matter

    def remember(self, address: str, digest: str) -> None:
        with self._lock:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[(address, digest)] = time.monotonic()

    def known(self, address: str, digest: str) -> bool:
        seen = self._known.get((address, digest))
        return seen is not None and time.monotonic() - seen < self.remember_seconds


LoginThrottle = FailureThrottle  # the name the services used before bearer keys


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class Require:
    """FastAPI dependency: the caller's principal, which must hold ``permission`` (if any)."""

    def __init__(self, permission: str | None) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        # async so FastAPI does not hop to a thread; the credential lookup is cached and short.
        auth: AuthService = request.app.state.services.auth
        principal = auth.authenticate(request.headers.get("authorization"),
                                      client_address(request))
        if self.permission and not principal.allows(self.permission):
            raise ApiError(403, f"this needs the '{self.permission}' permission")
        return principal


authenticated = Require(None)
can_read = Require("read")
can_write = Require("write")
is_admin = Require("admin")

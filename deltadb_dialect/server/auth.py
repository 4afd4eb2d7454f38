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
API_KEY_PREFIX = "ddb"
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
    if seconds <= 0:
        raise ValueError("a duration must be positive")
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

    def allows(self, permission: str) -> bool:
        return permission in self.permissions or "admin" in self.permissions

    def may_use(self, db: str) -> bool:
        """Whether this caller's key is scoped to include database ``db``."""
        if self.databases is None:
            return True
        return any(db == pattern or (pattern.endswith("*") and db.startswith(pattern[:-1]))
                   for pattern in self.databases)

    def check_database_scope(self, db: str) -> None:
        if not self.may_use(db):
            raise ApiError(403, f"this key may not use database {db!r}")

    def as_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "permissions": sorted(self.permissions),
            "expires_at": self.expires_at,
            "api_key_id": self.api_key_id,
            "databases": list(self.databases) if self.databases is not None else None,
        }


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


class AuthService:
    def __init__(
        self,
        engine: Engine,
        admin_key: str | None,
        client_ttl: float = 86400.0,
        cache_seconds: float = 2.0,
    ) -> None:
        self.engine = engine
        self.admin_key = admin_key or None
        self.client_ttl = client_ttl
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @property
    def development_mode(self) -> bool:
        return self.admin_key is None

    # ── login / logout ────────────────────────────────────────────────

    def login(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, 'send {"key": "..."} (or {"client_id": "..."} in development mode)')
        key, client_id = body.get("key"), body.get("client_id")
        if isinstance(key, str) and key:
            return self._login_with_key(key)
        if isinstance(client_id, str) and client_id:
            if not self.development_mode:
                raise ApiError(401, "client_id login is only available in development mode; "
                                    "log in with an admin or API key")
            if len(client_id) > 255 or not client_id.isprintable():
                raise ApiError(400, "client_id must be printable and at most 255 characters")
            return self.issue_token(client_id, ALL_PERMISSIONS)
        raise ApiError(400, 'send {"key": "..."} (or {"client_id": "..."} in development mode)')

    def _login_with_key(self, key: str) -> dict[str, Any]:
        if self.admin_key is not None and hmac.compare_digest(
            key.encode("utf-8"), self.admin_key.encode("utf-8")
        ):
            return self.issue_token("admin", ALL_PERMISSIONS)
        parts = key.split("_", 2)
        if len(parts) == 3 and parts[0] == API_KEY_PREFIX:
            with read_transaction(self.engine) as conn:
                row = conn.execute(
                    select(tables.api_keys).where(tables.api_keys.c.id == parts[1])
                ).first()
            if (
                row is not None
                and hmac.compare_digest(row.secret_hash, sha256_hex(parts[2]))
                and (row.expires_at is None or row.expires_at > iso(utc_now()))
            ):
                permissions = frozenset(json.loads(row.permissions))
                databases = json.loads(row.databases) if row.databases else None
                return self.issue_token(row.name, permissions, row.id, row.expires_at, databases)
        raise ApiError(401, "invalid or expired key")

    def issue_token(
        self,
        client_id: str,
        permissions: frozenset[str],
        api_key_id: str | None = None,
        key_expires_at: str | None = None,
        databases: list[str] | None = None,
    ) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        now = utc_now()
        expires_at = iso(now + dt.timedelta(seconds=self.client_ttl))
        if key_expires_at is not None:
            expires_at = min(expires_at, key_expires_at)  # a token never outlives its key
        with write_transaction(self.engine) as conn:
            conn.execute(delete(tables.tokens).where(tables.tokens.c.expires_at <= iso(now)))
            conn.execute(tables.tokens.insert().values(
                token_hash=sha256_hex(token), client_id=client_id,
                permissions=json.dumps(sorted(permissions)), api_key_id=api_key_id,
                databases=json.dumps(databases) if databases is not None else None,
                created_at=iso(now), expires_at=expires_at,
            ))
        return {"token": token, "client_id": client_id, "expires_at": expires_at,
                "permissions": sorted(permissions)}

    def logout(self, principal: Principal) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                delete(tables.tokens).where(tables.tokens.c.token_hash == principal.token_hash)
            )
        with self._lock:
            self._cache.pop(principal.token_hash, None)

    # ── authenticating requests ───────────────────────────────────────

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise ApiError(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
        token_hash = sha256_hex(authorization[7:].strip())
        now = time.monotonic()
        cached = self._cache.get(token_hash)
        if cached is not None and now - cached[1] < self.cache_seconds:
            principal = cached[0]
        else:
            principal = self._load_token(token_hash)
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token_hash] = (principal, now)
        if principal.expires_at <= iso(utc_now()):
            raise ApiError(401, "token expired; log in again", {"WWW-Authenticate": "Bearer"})
        return principal

    def _load_token(self, token_hash: str) -> Principal:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(tables.tokens).where(tables.tokens.c.token_hash == token_hash)
            ).first()
        if row is None:
            raise ApiError(401, "invalid or revoked token", {"WWW-Authenticate": "Bearer"})
        databases = tuple(json.loads(row.databases)) if row.databases else None
        return Principal(row.client_id, frozenset(json.loads(row.permissions)), row.expires_at,
                         token_hash, row.api_key_id, databases)

    # ── API keys ──────────────────────────────────────────────────────

    def create_api_key(self, body: Any, created_by: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "send {name, permissions, expires_in?}")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise ApiError(400, "name must be a non-empty string of at most 255 characters")
        permissions = check_permissions(body.get("permissions"))
        databases = check_database_patterns(body.get("databases"))
        expires_at = None
        if body.get("expires_in") is not None:
            try:
                seconds = parse_duration(body["expires_in"])
            except ValueError as exc:
                raise ApiError(400, f"expires_in: {exc}") from None
            expires_at = iso(utc_now() + dt.timedelta(seconds=seconds))
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = {"id": key_id, "name": name.strip(), "permissions": sorted(permissions),
               "created_at": iso(utc_now()), "expires_at": expires_at, "created_by": created_by,
               "databases": list(databases) if databases is not None else None}
        with write_transaction(self.engine) as conn:
            conn.execute(tables.api_keys.insert().values(
                {**row, "permissions": json.dumps(row["permissions"]),
                 "databases": json.dumps(row["databases"]) if databases is not None else None,
                 "secret_hash": sha256_hex(secret)}
            ))
        return {**row, "key": f"{API_KEY_PREFIX}_{key_id}_{secret}"}

    def list_api_keys(self) -> list[dict[str, Any]]:
        k = tables.api_keys.c
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(k.id, k.name, k.permissions, k.created_at, k.expires_at, k.created_by,
                       k.databases)
                .order_by(k.created_at, k.id)
            ).all()
        return [{"id": r.id, "name": r.name, "permissions": json.loads(r.permissions),
                 "created_at": r.created_at, "expires_at": r.expires_at,
                 "created_by": r.created_by,
                 "databases": json.loads(r.databases) if r.databases else None} for r in rows]

    def delete_api_key(self, key_id: str) -> bool:
        """Delete a key and revoke every token issued for it."""
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


class LoginThrottle:
    """Refuse logins from an address after too many failures within a window (per process).

    Keys are long random secrets except the admin key, which a person chooses; this keeps a
    guessing loop slow without locking anyone out for long.
    """

    def __init__(self, max_failures: int = 10, window_seconds: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> list[float]:
        recent = [t for t in self._failures.get(address, []) if now - t < self.window]
        if recent:
            self._failures[address] = recent
        else:
            self._failures.pop(address, None)
        return recent

    def check(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            recent = self._recent(address, now)
        if len(recent) >= self.max_failures:
            retry = max(1, int(self.window - (now - recent[0])) + 1)
            raise ApiError(429, f"too many failed logins; retry in {retry} s",
                           {"Retry-After": str(retry)})

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:
                self._failures.clear()
            self._failures.setdefault(address, []).append(now)


class Require:
    """FastAPI dependency: the caller's principal, which must hold ``permission`` (if any)."""

    def __init__(self, permission: str | None) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        # async so FastAPI does not hop to a thread; the token lookup is cached and short.
        auth: AuthService = request.app.state.services.auth
        principal = auth.authenticate(request.headers.get("authorization"))
        if self.permission and not principal.allows(self.permission):
            raise ApiError(403, f"this needs the '{self.permission}' permission")
        return principal


authenticated = Require(None)
can_read = Require("read")
can_write = Require("write")
is_admin = Require("admin")

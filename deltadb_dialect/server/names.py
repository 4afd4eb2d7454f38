"""Rules for database names and entity keys, and the guards on request bodies.

Names and keys end up in file names on the DeltaDatabase side and in SQL identifiers or
cursors here, so both refuse anything that could traverse or confuse: ``/``, ``\\``, ``..``,
control characters, and more than 255 bytes.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from deltadb_dialect.server.errors import ApiError

MAX_NAME_BYTES = 255
MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 64
INTERNAL_PREFIX = "__deltadb_"  # the server's and the store's own tables

_FORBIDDEN = re.compile(r"[/\\\x00-\x1f\x7f-\x9f]|\.\.")


def name_problem(value: str, what: str) -> str | None:
    """Why ``value`` is not a usable name or key, or None when it is."""
    if not value:
        return f"{what} is empty"
    if len(value.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"{what} is longer than {MAX_NAME_BYTES} bytes"
    if _FORBIDDEN.search(value):
        return f"{what} contains '/', '\\', '..' or a control character"
    return None


def check_key(key: str | None) -> str:
    if key is None:
        raise ApiError(400, "missing 'key' query parameter")
    problem = name_problem(key, "key")
    if problem:
        raise ApiError(400, problem)
    return key


def check_database(name: str) -> str:
    problem = name_problem(name, "database name")
    if problem:
        raise ApiError(400, problem)
    if name.startswith(INTERNAL_PREFIX) or name.lower().startswith("sqlite_"):
        raise ApiError(400, "database name is reserved")
    return name


# Nesting depth is measured on the raw bytes, before json.loads recurses into the document.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings ignored)."""
    if body.count(b"[") + body.count(b"{") <= MAX_DEPTH:
        return 0  # cannot be too deep: skip the scan on ordinary documents
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(_DEPTH_STEP[b] for b in brackets), default=0)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_body(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a request body, refusing oversize, too-deep and non-standard JSON with ApiError."""
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    if not body.strip():
        raise ApiError(400, "request body is empty")
    if nesting_depth(body) > max_depth:
        raise ApiError(400, f"document is nested deeper than {max_depth} levels")
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"invalid JSON: {exc}") from None


def dump_json(value: Any) -> str:
    """Compact JSON text as stored in the entity table."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

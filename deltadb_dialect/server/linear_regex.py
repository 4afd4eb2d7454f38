"""Regular expressions in schemas run on RE2, whose matching time is linear in the input.

``jsonschema`` evaluates ``pattern``, ``patternProperties`` (and with them
``additionalProperties`` and ``unevaluatedProperties``) with Python's backtracking ``re``,
where a pattern such as ``^(a+)+$`` takes exponential time on a 30-character value. Those
keyword modules look up ``re.search`` when they run, so :func:`install` points them at
:func:`search`, which compiles with RE2. A pattern RE2 cannot compile (backreferences,
lookaround) falls back to ``re`` for other users of ``jsonschema`` in the process; the entity
server refuses such patterns when a schema is stored (:func:`problem`), so its own schemas
never reach the fallback.
"""

from __future__ import annotations

import re
import types
from functools import lru_cache
from typing import Any

import re2

MAX_PATTERN_CHARS = 4096
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print the pattern, a user's text, on stderr
_OPTIONS.max_mem = 8 << 20  # per compiled pattern; larger programs are refused


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> Any:
    """The RE2 program of ``pattern``; raises ``re2.error`` when RE2 cannot compile it."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise re2.error(f"pattern is longer than {MAX_PATTERN_CHARS} characters")
    return re2.compile(pattern, options=_OPTIONS)


def problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used, or None."""
    try:
        compiled(pattern)
    except re2.error as exc:
        text = str(exc)
        reason = text.split(":")[0] if len(text) > 200 else text
        return f"{reason} (patterns run on RE2: no backreferences or lookaround)"
    return None


def search(pattern: str, text: str) -> bool:
    try:
        program = compiled(pattern)
    except re2.error:
        return re.search(pattern, text) is not None
    return program.search(text) is not None


def is_regex(instance: object) -> bool:
    """``format: regex``: a string RE2 compiles (never Python's recursive parser)."""
    return not isinstance(instance, str) or problem(instance) is None


_SHIM = types.SimpleNamespace(search=search)


def install() -> None:
    """Make jsonschema's pattern keywords use :func:`search` (idempotent)."""
    from jsonschema import _keywords, _legacy_keywords, _utils

    for module in (_keywords, _legacy_keywords, _utils):
        # The stubs do not list these private modules' own `import re`, replaced here.
        module.re = _SHIM  # type: ignore[attr-defined]

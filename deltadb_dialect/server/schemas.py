"""JSON Schemas kept in the store: checked when saved, compiled once, applied to writes.

A schema whose id equals a database's name validates every document written to that database.
Compiled validators are cached by the schema's text, so an edit made by another worker process
takes effect on the next write everywhere (each write compares the schema row in its
transaction with the text it was validated against).

Validation is untrusted work: a schema comes from an admin key, a document from any writer.
So it runs *before* the write transaction (a slow document never holds the store), patterns
run on RE2 (linear time, see ``linear_regex``), ``$ref`` resolves only inside the schema (and
the draft metaschemas shipped with ``jsonschema``): nothing is ever fetched, and a reference
to anything else is refused when the schema is stored. A schema that refers to itself without
end is refused when stored, and a recursion met while validating is a 400.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator
from jsonschema_specifications import REGISTRY as METASCHEMAS
from sqlalchemy import Connection, Engine, delete, select

from deltadb_dialect.server import linear_regex, tables
from deltadb_dialect.server.engine import read_transaction, write_transaction
from deltadb_dialect.server.errors import ApiError
from deltadb_dialect.server.names import dump_json, parse_json_body

linear_regex.install()

_DEFAULT_DRAFT = "http://json-schema.org/draft-07/schema#"  # DeltaDatabase's templates' draft
# Nothing is ever retrieved: an unknown URI is Unresolvable (jsonschema adds the metaschemas).
NO_RETRIEVAL = referencing.Registry()
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
_PROBES: tuple[Any, ...] = (None, {}, [], "", 0)
UNCHECKED = object()  # validate_documents: no validation was done before the transaction


def format_checker(cls: type[Validator]) -> jsonschema.FormatChecker:
    """The draft's format checks, with ``regex`` judged by RE2 (Python's ``re`` parser
    recurses, so ``"(" * 50000`` would be a RecursionError)."""
    checker = jsonschema.FormatChecker(formats=())
    checker.checkers = dict(cls.FORMAT_CHECKER.checkers)
    checker.checks("regex")(linear_regex.is_regex)
    return checker


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (keyword, value) pair in a schema document, depth first (no recursion limit)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                yield key, value
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)


def _check_patterns_and_refs(schema: Any, cls: type[Validator]) -> None:
    resource = referencing.jsonschema.specification_with(
        cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id") or _DEFAULT_DRAFT,
        default=referencing.jsonschema.DRAFT7,
    ).create_resource(schema)
    resolver = METASCHEMAS.resolver_with_root(resource)
    for keyword, value in _walk(schema):
        if keyword == "pattern" and isinstance(value, str):
            problems = [value]
        elif keyword == "patternProperties" and isinstance(value, dict):
            problems = list(value)
        else:
            problems = []
        for pattern in problems:
            problem = linear_regex.problem(pattern)
            if problem:
                raise ApiError(400, f"invalid pattern: {problem}")
        if keyword in _REF_KEYWORDS and isinstance(value, str):
            try:
                resolver.lookup(value)
            except referencing.exceptions.Unresolvable:
                raise ApiError(400, f"{keyword} {value[:200]!r} does not point inside this "
                                    "schema; references to other documents are not "
                                    "fetched") from None


def check_schema(schema: Any) -> None:
    """Refuse anything that is not a valid, self-contained JSON Schema with ApiError(400)."""
    if not isinstance(schema, dict | bool):
        raise ApiError(400, "a schema must be a JSON object")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    try:
        # The stubs lack check_schema's format_checker and boolean schemas; jsonschema takes both.
        cls.check_schema(schema, format_checker=format_checker(cls))  # type: ignore[call-arg,arg-type]
    except SchemaError as exc:
        raise ApiError(400, f"invalid JSON Schema: {exc.message[:500]}") from None
    except RecursionError:
        raise ApiError(400, "invalid JSON Schema: nested too deeply") from None
    if isinstance(schema, dict):
        _check_patterns_and_refs(schema, cls)
    validator = cls(schema, registry=NO_RETRIEVAL, format_checker=format_checker(cls))
    for probe in _PROBES:
        try:
            validator.is_valid(probe)
        except RecursionError:
            raise ApiError(400, "the schema refers to itself without end "
                                "(a $ref cycle that never reaches a keyword)") from None
        except referencing.exceptions.Unresolvable:
            raise ApiError(400, "the schema has a reference that does not resolve") from None


_TEXT_TTL = 1.0


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe_error(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where or '(root)'}: {error.message}"


class SchemaRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._compiled: dict[str, Validator] = {}
        self._texts: dict[str, tuple[str | None, float]] = {}
        self._lock = threading.Lock()

    def validator(self, schema_text: str) -> Validator:
        compiled = self._compiled.get(schema_text)
        if compiled is None:
            schema = parse_json_body(schema_text.encode("utf-8"))
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
            compiled = cls(schema, registry=NO_RETRIEVAL, format_checker=format_checker(cls))
            with self._lock:
                if len(self._compiled) > 256:  # schemas change rarely; keep the cache bounded
                    self._compiled.clear()
                self._compiled[schema_text] = compiled
        return compiled

    def schema_text_in(self, conn: Connection, schema_id: str) -> str | None:
        # Driver SQL: this runs inside every write, so it skips statement construction.
        found = conn.exec_driver_sql(
            "SELECT schema FROM __deltadb_schemas WHERE id = ?", (schema_id,)
        ).first()
        return None if found is None else str(found[0])

    def validate_documents(self, conn: Connection, db: str, documents: dict[str, Any],
                           validated_with: Any = UNCHECKED) -> None:
        """Inside the write transaction: validate against the schema named like ``db``,
        unless ``validated_with`` (the schema text checked before the transaction, or None
        for no schema) is still the stored one, which is the usual case."""
        text = self.schema_text_in(conn, db)
        if text is None or text == validated_with:
            return
        self.check_documents(text, db, documents)

    def check_documents(self, schema_text: str, db: str, documents: dict[str, Any]) -> None:
        validator = self.validator(schema_text)
        for key, document in documents.items():
            try:
                error = jsonschema.exceptions.best_match(validator.iter_errors(document))
            except RecursionError:
                raise ApiError(400, f"entity {key!r} cannot be checked against schema {db!r}: "
                                    "the schema recurses without end") from None
            except referencing.exceptions.Unresolvable:
                raise ApiError(400, f"schema {db!r} has a reference that does not resolve; "
                                    "store it again") from None
            if error is not None:
                raise ApiError(400, f"entity {key!r} does not match schema {db!r}: "
                               f"{describe_error(error)}")

    def cached_text(self, db: str) -> str | None:
        """The schema text of ``db`` as read at most ``_TEXT_TTL`` seconds ago (outside any
        transaction); the write re-checks it against the stored row."""
        now = time.monotonic()
        cached = self._texts.get(db)
        if cached is not None and now - cached[1] < _TEXT_TTL:
            return cached[0]
        with read_transaction(self.engine) as conn:
            text = self.schema_text_in(conn, db)
        with self._lock:
            if len(self._texts) > 10_000:
                self._texts.clear()
            self._texts[db] = (text, now)
        return text

    def prevalidate(self, db: str, documents: dict[str, Any]) -> str | None:
        """Validate before the write transaction; the schema text used (None: no schema)."""
        text = self.cached_text(db)
        if text is not None:
            self.check_documents(text, db, documents)
        return text

    def errors_for(self, schema_text: str, document: Any) -> list[str]:
        validator = self.validator(schema_text)
        return [describe_error(e) for e in validator.iter_errors(document)][:50]

    # ── stored schemas ────────────────────────────────────────────────

    def get(self, schema_id: str) -> Any | None:
        with read_transaction(self.engine) as conn:
            text = self.schema_text_in(conn, schema_id)
        return None if text is None else parse_json_body(text.encode("utf-8"))

    def list(self) -> list[dict[str, str]]:
        with read_transaction(self.engine) as conn:
            rows = conn.execute(
                select(tables.schemas.c.id, tables.schemas.c.updated_at).order_by(
                    tables.schemas.c.id
                )
            ).all()
        return [{"id": row.id, "updated_at": row.updated_at} for row in rows]

    def put(self, schema_id: str, schema: Any) -> bool:
        """Store a schema; True when it is new."""
        check_schema(schema)
        text = dump_json(schema)
        with write_transaction(self.engine) as conn:
            existed = self.schema_text_in(conn, schema_id) is not None
            if existed:
                conn.execute(
                    tables.schemas.update()
                    .where(tables.schemas.c.id == schema_id)
                    .values(schema=text, updated_at=_now())
                )
            else:
                conn.execute(
                    tables.schemas.insert().values(id=schema_id, schema=text, updated_at=_now())
                )
        self._texts.pop(schema_id, None)
        return not existed

    def delete(self, schema_id: str) -> bool:
        with write_transaction(self.engine) as conn:
            result = conn.execute(delete(tables.schemas).where(tables.schemas.c.id == schema_id))
        self._texts.pop(schema_id, None)
        return bool(result.rowcount)

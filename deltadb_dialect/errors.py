"""Errors raised by the store, below the DB-API layer.

The DB-API module maps each to the PEP 249 class a SQLAlchemy user expects
(for example a wrong key surfaces as ``OperationalError``), keeping the
message, which always says what is wrong and what to do about it.
"""


class StoreError(Exception):
    """Base class of every store failure."""


class KeyMissingError(StoreError):
    """No master key was given for a store that needs one."""


class WrongKeyError(StoreError):
    """The master key given does not open this store."""


class TamperError(StoreError):
    """A ciphertext failed to authenticate: the store was altered or corrupted."""


class CorruptStoreError(StoreError):
    """The store's files are structurally damaged (not a torn final write)."""


class LockTimeoutError(StoreError):
    """Another connection or process held the store for longer than the timeout."""


class LockNotAvailableError(LockTimeoutError):
    """A transaction that was not to wait (``GroupCommit.not_waiting``) would have waited."""


class SchemaViolationError(StoreError):
    """A row does not satisfy its table's JSON Schema."""


class StorageFullError(StoreError):
    """The disk refused a write (full, quota, read-only); nothing was committed."""


class UnsupportedSchemaError(StoreError):
    """A table's shape is one the store cannot keep (the message says how to change it)."""


class SerializationError(StoreError):
    """Another host changed what a transaction read before it wrote; nothing was written."""

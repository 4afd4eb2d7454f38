"""The directory store's round-trip tests, run on the PostgreSQL-backed store.

The tests are the same functions; this directory's ``make_engine`` fixture adds the
``storage=`` option to every URL they open, so each runs against a fresh database.
"""

from tests.deltadb_dialect import test_store_capture as capture
from tests.deltadb_dialect import test_store_roundtrip as roundtrip

# These two look at the store directory's files; test_pg_store.py checks the same on
# PostgreSQL's tables.
_FILES_ONLY = {"test_checkpoint_then_more_commits_reopen",
               "test_vacuum_compacts_the_store_and_keeps_rowid_keys"}

for _module in (roundtrip, capture):
    globals().update({name: getattr(_module, name) for name in dir(_module)
                      if name.startswith("test_") and name not in _FILES_ONLY})

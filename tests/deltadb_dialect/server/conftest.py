"""Fixtures for the entity server's tests; they live in ddb_server_helpers (a unique module
name, so they never clash with another suite's conftest)."""

from ddb_server_helpers import (
    api,
    backend,
    dev_api,
    engine_url,
    live_server,
    make_api,
    master_key_in_environment,
)

__all__ = ["api", "backend", "dev_api", "engine_url", "live_server", "make_api",
           "master_key_in_environment"]

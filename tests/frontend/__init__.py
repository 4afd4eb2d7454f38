"""Browser tests of the web frontend (a package, so its conftest never shadows another suite's)."""

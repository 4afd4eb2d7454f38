# Open Chat on DeltaDB: `make run` serves the app, `make test` runs every suite.
# The first Python >= 3.11 on PATH (pyproject.toml's requires-python); PYTHON=... overrides.
ifndef PYTHON
PYTHON := $(shell for p in python3.14 python3.13 python3.12 python3.11 python3; do \
  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  2>/dev/null && { echo $$p; break; }; done)
endif
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/data
KEY_FILE ?= $(CURDIR)/.secrets/deltadb-master.key
DATABASE_URL ?= deltadb:///$(DATA_DIR)/openchat?key_file=$(KEY_FILE)

.PHONY: run test compliance-pg test-container venv dev-deps system-tools postgresql smoke-runtime lint bench screenshots clean help

help:
	@echo "make run   - set up and serve Open Chat on http://$(HOST):$(PORT)"
	@echo "make test  - install test dependencies (Chromium included) and run every suite"

$(VENV)/.runtime-stamp: requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required: install python3 (3.11+) or set PYTHON=/path/to/python3.x"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	$(PIP) install --quiet -r requirements.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.dev-stamp: $(VENV)/.runtime-stamp requirements-dev.txt
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime-stamp
dev-deps: $(VENV)/.dev-stamp

# A venv with requirements.txt only: every documented entry point must run from it.
RUNTIME_VENV := .venv-runtime
$(RUNTIME_VENV)/.runtime-stamp: requirements.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required: install python3 (3.11+) or set PYTHON=/path/to/python3.x"; exit 1; }
	rm -rf $(RUNTIME_VENV) && $(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

smoke-runtime: $(RUNTIME_VENV)/.runtime-stamp
	$(RUNTIME_VENV)/bin/python tests/runtime_smoke.py

# Debian's Chromium drives the browser tests (Playwright never downloads its own);
# curl, jq and Go run the DeltaDatabase seed's client examples against the entity server.
SYSTEM_TOOLS := chromium:chromium curl:curl jq:jq go:golang-go
system-tools:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages for the tests:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; fi

# Debian's PostgreSQL server binaries, for the throwaway cluster the tests start on a free
# loopback port (tests/pg_cluster.py); the package's own cluster is not used.
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "Installing Debian's postgresql for the tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

# Connection limits against slow or flooding clients (docs/SECURITY.md, "HTTP hardening"):
# at most LIMIT_CONCURRENCY connections (then 503), idle keep-alive closed after 5 s, a
# request's headers at most 16 KiB, and, from the protocol class, headers complete within
# HTTP_HEADER_TIMEOUT_SECONDS (10) and a body never silent for HTTP_BODY_TIMEOUT_SECONDS (30).
LIMIT_CONCURRENCY ?= 512
UVICORN_LIMITS := --http backend.http_protocol:TimedH11Protocol \
	--limit-concurrency $(LIMIT_CONCURRENCY) --timeout-keep-alive 5 \
	--h11-max-incomplete-event-size 16384

# The key is made on a first run only: never beside a store that already holds data (the
# sentence says what to do), and two first runs at once share one key (backend/first_run.py).
# uvicorn replaces the shell (exec), so Ctrl-C and SIGTERM reach it and it shuts down cleanly.
GIVEN_URL = $(if $(filter environment command,$(origin DATABASE_URL)),--given-url '$(DATABASE_URL)')
run: $(VENV)/.runtime-stamp
	@mkdir -p $(DATA_DIR)
	@$(PY) -m backend.first_run --store $(DATA_DIR)/openchat --key-file $(KEY_FILE) $(GIVEN_URL)
	@DATABASE_URL='$(DATABASE_URL)' $(VENV)/bin/alembic upgrade head
	@DATABASE_URL='$(DATABASE_URL)' exec $(VENV)/bin/uvicorn backend.main:app \
		--host $(HOST) --port $(PORT) --proxy-headers $(UVICORN_LIMITS)

test: $(VENV)/.dev-stamp system-tools postgresql
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(MAKE) --no-print-directory smoke-runtime
	$(PY) -m pytest
	# The API route tests again on SQLite and on a real PostgreSQL server (deltadb ran above).
	OPENCHAT_TEST_DB=sqlite $(PY) -m pytest -q tests/backend/api
	OPENCHAT_TEST_DB=postgresql $(PY) -m pytest -q tests/backend/api
	$(PY) -m pytest tests/deltadb_dialect/compliance
	$(MAKE) --no-print-directory compliance-pg

# The same compliance suites on a store kept in PostgreSQL (a throwaway cluster for the run).
compliance-pg: $(VENV)/.dev-stamp postgresql
	$(PY) -m pytest -q tests/deltadb_dialect/compliance --db deltadb_pg

lint: $(VENV)/.dev-stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: $(VENV)/.dev-stamp
	$(PY) bench/orm_bench.py

# The browser tests that take the README's screenshots, writing them into docs/screenshots.
screenshots: $(VENV)/.dev-stamp system-tools
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q \
		tests/frontend/test_ui_screenshots.py tests/deltadb_dialect/server/test_server_browser.py

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) .pytest_cache .ruff_cache .mypy_cache .pytest-screenshots

# The container image and compose.yaml, built and run for real (root: installs and starts
# Docker, builds a local Debian base once); `make test` runs the same suite with the others.
test-container: $(VENV)/.dev-stamp
	$(PY) -m pytest -m container tests/container

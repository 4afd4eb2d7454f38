# Open Chat on DeltaDB: `make run` serves the app, `make test` runs every suite.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/data
KEY_FILE ?= $(CURDIR)/.secrets/deltadb-master.key
DATABASE_URL ?= deltadb:///$(DATA_DIR)/openchat?key_file=$(KEY_FILE)

.PHONY: run test test-container venv dev-deps system-tools lint bench screenshots clean help

help:
	@echo "make run   - set up and serve Open Chat on http://$(HOST):$(PORT)"
	@echo "make test  - install test dependencies (Chromium included) and run every suite"

$(VENV)/.runtime-stamp: requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
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

$(KEY_FILE): | $(VENV)/.runtime-stamp
	@$(PY) -m deltadb_dialect keygen --out $(KEY_FILE)

# Connection limits against slow or flooding clients (docs/SECURITY.md, "HTTP hardening"):
# at most LIMIT_CONCURRENCY connections (then 503), idle keep-alive closed after 5 s, a
# request's headers at most 16 KiB, and, from the protocol class, headers complete within
# HTTP_HEADER_TIMEOUT_SECONDS (10) and a body never silent for HTTP_BODY_TIMEOUT_SECONDS (30).
LIMIT_CONCURRENCY ?= 512
UVICORN_LIMITS := --http backend.http_protocol:TimedH11Protocol \
	--limit-concurrency $(LIMIT_CONCURRENCY) --timeout-keep-alive 5 \
	--h11-max-incomplete-event-size 16384

run: $(VENV)/.runtime-stamp $(KEY_FILE)
	@mkdir -p $(DATA_DIR)
	@echo "Store: $(DATA_DIR)/openchat  master key file: $(KEY_FILE)"
	DATABASE_URL='$(DATABASE_URL)' $(VENV)/bin/alembic upgrade head
	DATABASE_URL='$(DATABASE_URL)' $(VENV)/bin/uvicorn backend.main:app --host $(HOST) --port $(PORT) --proxy-headers \
		$(UVICORN_LIMITS)

test: $(VENV)/.dev-stamp system-tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest
	$(PY) -m pytest tests/deltadb_dialect/compliance

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
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .pytest-screenshots

# The container image and compose.yaml, built and run for real (root: installs and starts
# Docker, builds a local Debian base once); `make test` runs the same suite with the others.
test-container: $(VENV)/.dev-stamp
	$(PY) -m pytest -m container tests/container

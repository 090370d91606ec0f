# Two commands set everything up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DEV_INSTALLED := $(VENV)/.installed-dev

export API_PORT ?= 8002
export SANDBOX_PORT ?= 12111

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_BROKER_URL ?= redis://127.0.0.1:6379/0

.PHONY: install install-dev deps var-dirs dotenv-notice run test lint chaos bench migrate seed clean

$(INSTALLED): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "make: Python 3.11 or newer is needed; $(PYTHON) is $$($(PYTHON) --version 2>&1). Run e.g. make run PYTHON=python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

# Tests, linters and browser drivers on top (make test, make chaos, make bench, CI).
$(DEV_INSTALLED): $(INSTALLED) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(INSTALLED)
install-dev: $(DEV_INSTALLED)

# Django refuses to start without a real DJANGO_SECRET_KEY. For the local stack, one is
# generated once into var/ (git-ignored, kept across runs so logins survive a restart) and
# handed to every process in the environment; a DJANGO_SECRET_KEY already set wins.
DEV_SECRET_KEY_FILE := var/django_secret_key
WITH_SECRET_KEY = DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$(cat $(DEV_SECRET_KEY_FILE))}"
NEW_SECRET_KEY = $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(64))'

$(DEV_SECRET_KEY_FILE):
	mkdir -p var
	umask 077 && $(NEW_SECRET_KEY) > $@

# What `make test` needs beside Python: PostgreSQL, Redis, Chromium (bin/deps says what it did).
deps:
	bin/deps

# var/ holds the embedded default's state (SQLite, the filesystem broker, static files); settings
# create nothing at import, so the commands that need the folders make them here.
var-dirs:
	mkdir -p var/broker/queue var/static

# A .env (e.g. copied from .env.example for compose) is read by every process, make run's too:
# say so, naming what in it moves make run off the embedded default.
dotenv-notice:
	@if [ -f .env ]; then \
	  named="$$(grep -oE '^(DATABASE_URL|CELERY_BROKER_URL|REDIS_URL|CACHE_URL|STRIPE_SECRET_KEY|STRIPE_API_BASE)=.+' .env | cut -d= -f1 | tr '\n' ' ')"; \
	  if [ -n "$$named" ]; then echo "make: NOTE .env is read by every process and sets: $$named(move .env aside for the embedded default: SQLite, filesystem broker, the Stripe sandbox)"; fi; \
	  if grep -qE '^STRIPE_SECRET_KEY=.*replace_me' .env; then echo "make: .env's STRIPE_SECRET_KEY is a placeholder: make run uses the offline sandbox instead"; fi; \
	fi

migrate: install $(DEV_SECRET_KEY_FILE) var-dirs dotenv-notice
	$(WITH_SECRET_KEY) $(PY) manage.py migrate --noinput

seed: migrate
	$(WITH_SECRET_KEY) $(PY) manage.py seed_demo

# API (gunicorn on :$(API_PORT)), worker, beat, and the Stripe sandbox unless a real key is set.
run: seed
	$(WITH_SECRET_KEY) $(PY) manage.py collectstatic --noinput --verbosity 0
	$(WITH_SECRET_KEY) bin/dev-stack

# The whole suite on PostgreSQL and Redis (tests/conftest.py names the URL that is down),
# with a fresh secret key per run (the stack processes the tests start inherit it).
test: install-dev
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-$$($(NEW_SECRET_KEY))} \
	$(PY) -m pytest $(PYTEST_ARGS)

# The architecture's contracts (.importlinter: imports run one way) and ruff. CI runs both.
lint: install-dev
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .

# The long chaos run (not part of `make test`): CHAOS_BOOKINGS (default 1000) bookings through
# the whole stack with every fault of tests/e2e/test_chaos.py plus failing refunds, delayed
# debits and blackholed dependencies, ending with `lost: 0 doubled: 0 audit discrepancies: 0`.
CHAOS_BOOKINGS ?= 1000
chaos: install-dev
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-$$($(NEW_SECRET_KEY))} \
	CHAOS_BOOKINGS=$(CHAOS_BOOKINGS) \
	$(PY) -m pytest tests/e2e/test_chaos.py -m chaos_long -s -p no:logging $(PYTEST_ARGS)

# Benchmarks (not part of `make test`): each bench/[a-z]*.py prints its figures and writes
# bench/results/<name>.json. DATABASE_URL names the PostgreSQL server (they create bench_* databases);
# BENCH_BROKER_URL is their own Redis db (flushed by them). Every benchmark runs; failures are listed at the end.
BENCH_BROKER_URL ?= redis://127.0.0.1:6379/6
bench: install-dev
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	BENCH_BROKER_URL=$${BENCH_BROKER_URL:-$(BENCH_BROKER_URL)} \
	bash -c 'failed=""; for b in bench/[a-z]*.py; do echo "== $$b"; $(PY) $$b || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi'

clean:
	rm -rf var $(VENV)

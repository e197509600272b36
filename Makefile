# The two commands: `make run` (the product with demo data) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/shokti
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
PORT ?= 8000
CHANNELS_CONSOLE_FALLBACK ?= true
# Threads of the io worker (Procfile): many on PostgreSQL; a few on the embedded SQLite file.
CELERY_IO_CONCURRENCY ?= $(if $(DATABASE_URL),64,8)
# Embedded mode's SQLite file, filesystem broker, static files (settings read SHOKTI_VAR_DIR too).
VAR_DIR := $(or $(SHOKTI_VAR_DIR),$(CURDIR)/var)
# Prometheus multiprocess mode: web workers and Celery processes write here, /metrics sums it.
PROMETHEUS_MULTIPROC_DIR ?= $(VAR_DIR)/prometheus

.PHONY: run test bench venv services migrate seed lint clean messages

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3-venv is missing: installing it from Debian packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python requirements/base.txt requirements/dev.txt
	$(BIN)/pip install -q -r requirements/dev.txt
	@touch $@

venv: $(VENV)/.installed

services:
	@scripts/ensure_services.sh

# The product with demo data, on SQLite + Celery's filesystem broker unless
# DATABASE_URL / REDIS_URL are set. Web, workers and beat run under honcho (Procfile).
# DEMO_ADMIN_PASSWORD sets the demo logins' password; otherwise one is generated once.
run: export SITE_URL ?= http://127.0.0.1:$(PORT)
run: venv
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py collectstatic --noinput -v 0
	@echo
	@echo "Shokti: $(SITE_URL)/admin/  login admin@shokti.local  password $${DEMO_ADMIN_PASSWORD:-$$(cat $(VAR_DIR)/demo-admin-password 2>/dev/null || echo '(printed above)')}"
	@echo "        (ops@shokti.local and marketing@shokti.local share it; Ctrl-C stops everything)"
	@echo
	@# Files of a previous run's processes would be summed in again: start empty.
	rm -rf $(PROMETHEUS_MULTIPROC_DIR) && mkdir -p $(PROMETHEUS_MULTIPROC_DIR)
	@# The demo has no SMS/WhatsApp accounts: their messages go to the console log (docs/channels.md).
	CHANNELS_CONSOLE_FALLBACK=$(CHANNELS_CONSOLE_FALLBACK) CELERY_IO_CONCURRENCY=$(CELERY_IO_CONCURRENCY) PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR) PORT=$(PORT) $(BIN)/honcho start -f Procfile

# The whole suite on PostgreSQL and Redis; then (for the whole suite only) the headline flows again on the
# embedded default, SQLite with no Redis (tests marked `embedded`), as `make run` runs on a bare machine.
EMBEDDED_TEST_DIR := $(CURDIR)/var/test-embedded
test: venv services lint
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)
ifeq ($(strip $(PYTEST_ARGS)),)
	rm -rf $(EMBEDDED_TEST_DIR)
	SHOKTI_VAR_DIR=$(EMBEDDED_TEST_DIR) DATABASE_URL=sqlite:///$(EMBEDDED_TEST_DIR)/test.sqlite3 REDIS_URL= \
	  CELERY_BROKER_URL=filesystem:// $(BIN)/pytest -m embedded -q
endif

bench: venv services
	@# bench/webhook.py drives the server with wrk (Debian package).
	@command -v wrk >/dev/null || { echo "installing wrk from Debian packages"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq wrk >/dev/null; }
	@# bench/email_spam.py scores our email with SpamAssassin's local rules (Debian package).
	@command -v spamassassin >/dev/null || { echo "installing spamassassin from Debian packages"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq spamassassin >/dev/null; }
	DATABASE_URL=$(TEST_DATABASE_URL)_bench REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/run_all.py

lint: venv
	$(BIN)/ruff check --quiet .
	@# The layering and no-import-loop contracts of .importlinter.
	@out=$$($(BIN)/lint-imports --no-cache 2>&1) || { echo "$$out"; exit 1; }; echo "$$out" | grep '^Contracts:'

clean:
	rm -rf $(VENV) var .pytest_cache

# The console's Bengali (locale/bn) regenerated from the code, then compiled. The .mo files are committed:
# running and testing need no gettext; this target installs Debian's gettext when msgfmt is missing.
MESSAGES_IGNORE := -i ".venv/*" -i "var/*" -i "static/vendor/*" -i "static/root/*" -i "test-results/*"
messages: venv
	@command -v msgfmt >/dev/null || { echo "gettext is missing: installing it from Debian packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; }
	$(BIN)/python manage.py makemessages -l bn --no-location $(MESSAGES_IGNORE)
	$(BIN)/python manage.py makemessages -d djangojs -l bn --no-location $(MESSAGES_IGNORE)
	$(BIN)/python manage.py compilemessages -l bn

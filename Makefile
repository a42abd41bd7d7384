# Synapse on one machine.
#
#   make run    set up, load the demo, start Temporal + worker + web (Ctrl-C stops all)
#   make test   set up, run the whole test suite (PYTEST_ARGS="..." passes arguments on)
#
# Both create .venv with python3 and install requirements-dev.txt into it again
# whenever a requirements file changes.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements*.txt)

HOST ?= 127.0.0.1
PORT ?= 8000
TEMPORAL_PORT ?= 7233
TEMPORAL_UI_PORT ?= 8233
PYTEST_ARGS ?=

# What the three processes of Procfile.dev read. honcho sets PORT for every
# process itself, so the web port travels as SYNAPSE_PORT.
# make run is the product as people use it: DEBUG off (Synapse's own error pages), with a
# signing key made once per machine in .data/secret_key instead of the refused development key.
SECRET_KEY_FILE := .data/secret_key
RUN_KEY := SECRET_KEY=$$(cat $(SECRET_KEY_FILE)) DEBUG=$${DEBUG:-false} \
	ALLOWED_HOSTS=$${ALLOWED_HOSTS:-localhost,127.0.0.1,[::1],$(HOST)}
RUN_ENV := $(RUN_KEY) SYNAPSE_HOST=$(HOST) SYNAPSE_PORT=$(PORT) \
	TEMPORAL_PORT=$(TEMPORAL_PORT) TEMPORAL_UI_PORT=$(TEMPORAL_UI_PORT) \
	TEMPORAL_ADDRESS=$(HOST):$(TEMPORAL_PORT) TEMPORAL_UI_URL=http://$(HOST):$(TEMPORAL_UI_PORT) \
	SITE_URL=$${SITE_URL:-http://$(HOST):$(PORT)}

.DEFAULT_GOAL := help
.PHONY: help install run test migrate demo check-ports chromium clean

help:
	@echo "make run    start Synapse with the demo data on http://$(HOST):$(PORT)"
	@echo "make test   run the whole test suite (PYTEST_ARGS='cycles/tests/test_load_demo.py -q')"
	@echo "make clean  delete .venv and .data (the embedded database, Temporal history, uploads)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(REQUIREMENTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(STAMP)

$(SECRET_KEY_FILE): | $(BIN)/python
	@mkdir -p $(dir $@)
	@umask 077 && $(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))' > $@

migrate: install $(SECRET_KEY_FILE)
	$(RUN_KEY) $(BIN)/python manage.py migrate --noinput

demo: migrate
	$(RUN_KEY) $(BIN)/python manage.py load_demo

# Fail before starting anything rather than let one process die and honcho stop the rest.
check-ports: install
	@$(BIN)/python -c 'import socket, sys; \
	busy = [p for p in sys.argv[2:] if socket.socket().connect_ex((sys.argv[1], int(p))) == 0]; \
	busy and sys.exit("Port(s) " + ", ".join(busy) + " on " + sys.argv[1] + " are in use: stop what uses them, " \
	"or choose others, e.g. make run PORT=8001 TEMPORAL_PORT=7234 TEMPORAL_UI_PORT=8234")' \
	$(HOST) $(PORT) $(TEMPORAL_PORT) $(TEMPORAL_UI_PORT)

run: check-ports demo
	@mkdir -p .data
	@echo
	@echo "  Synapse      http://$(HOST):$(PORT)   (log in with a username above)"
	@echo "  Admin        http://$(HOST):$(PORT)/admin/"
	@echo "  Temporal UI  http://$(HOST):$(TEMPORAL_UI_PORT)"
	@echo "  Ctrl-C stops Temporal, the worker and the web server."
	@echo
	$(RUN_ENV) $(BIN)/honcho -f Procfile.dev start

# The browser tests drive Debian's Chromium: Playwright's own browser download
# is not reachable from every machine this runs on. Its dependencies include Pango,
# which WeasyPrint needs for the final test report's PDF.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "Chromium is not installed: the browser tests need it (e.g. sudo apt-get install chromium)."; \
	fi

test: install chromium
	DEBUG=$${DEBUG:-true} $(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .data

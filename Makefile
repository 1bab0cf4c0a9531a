# clay-relay — the two commands: `make run` (local stack on 127.0.0.1:3000) and `make test`.
# Everything installs itself on first use: a virtualenv for the code (.venv) and one for the SAM CLI
# and template linters (.tools), both from pinned requirements.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# A CPython >= 3.11, preferring 3.13 (Lambda's runtime). pyenv's versions are found without `pyenv global`.
PY_CANDIDATES := python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) python3.12 \
	$(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) python3.11 python3
PYTHON ?= $(shell for p in $(PY_CANDIDATES); do $$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
# `sam build` needs a python3.13 on PATH.
PY313 := $(shell for p in python3.13 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13); do $$p -c '' 2>/dev/null && { command -v $$p; break; }; done)
SAM_PATH := $(if $(PY313),$(dir $(PY313)):,)$(PATH)

VENV := .venv
TOOLS := .tools
CHECKOV := .checkov
export SAM_CLI_TELEMETRY := 0

.PHONY: help install browser run test lint typecheck check-template security unit e2e screenshots build invoke replay relay bench bench-drain docs clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "need CPython 3.11+ (3.13 preferred) on PATH"; exit 1; }
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@test -n "$(PY313)" || { echo "need python3.13 for the SAM CLI (sam build targets python3.13)"; exit 1; }
	@echo "==> creating $(TOOLS) (SAM CLI, aws-sam-translator, cfn-lint, bandit, pip-audit) with $(PY313)"
	$(PY313) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@touch $@

# checkov has a virtualenv of its own: it pins a boto3 that neither the code's nor the SAM CLI's accepts.
$(CHECKOV)/.installed: requirements-checkov.txt
	@test -n "$(PYTHON)" || { echo "need CPython 3.11+ (3.13 preferred) on PATH"; exit 1; }
	@echo "==> creating $(CHECKOV) (checkov) with $(PYTHON)"
	$(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

install: $(VENV)/.installed $(TOOLS)/.installed $(CHECKOV)/.installed browser ## install everything (done by the other commands on first use)

# The console's browser tests (tests/e2e/test_console.py) drive Debian's headless Chromium through its chromedriver.
# Installed with apt-get when missing and we are root (CI is); elsewhere those tests are skipped, saying why.
browser: ## headless Chromium and chromedriver for the console's browser tests (Debian's chromium, chromium-driver)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> installing chromium and chromium-driver (apt-get)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	    || echo "note: apt-get could not install chromium: the console's browser tests will be skipped"; \
	else echo "note: no chromium/chromedriver, and installing them needs root and apt-get: the console's browser tests will be skipped"; fi

run: $(VENV)/.installed ## start the local stack on http://127.0.0.1:3000 (Ctrl-C stops it)
	$(VENV)/bin/python -m local_stack run $(ARGS)

test: install lint typecheck check-template security unit e2e ## lint, type, template and security checks, unit/integration and end-to-end tests

lint: $(VENV)/.installed
	@echo "==> ruff"
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.installed ## mypy, strict on the layer
	@echo "==> mypy"
	$(VENV)/bin/mypy

check-template: $(TOOLS)/.installed
	@echo "==> sam validate --lint"
	PATH="$(SAM_PATH)" $(TOOLS)/bin/sam validate --lint
	@echo "==> aws-sam-translator + cfn-lint"
	$(TOOLS)/bin/python scripts/check_template.py

# After check-template: checkov also reads the CloudFormation it translated (.aws-sam/translated-template.json).
security: check-template $(TOOLS)/.installed $(CHECKOV)/.installed ## bandit, pip-audit (PyPI's advisories) and checkov
	@echo "==> bandit"
	$(TOOLS)/bin/bandit -c .bandit.yaml -r layers functions local_stack relay_cli -q
	@echo "==> pip-audit"
	$(TOOLS)/bin/python scripts/audit_dependencies.py
	@echo "==> checkov"
	$(CHECKOV)/bin/checkov --config-file .checkov.yaml -f template.yaml -f .aws-sam/translated-template.json

unit: $(VENV)/.installed
	@echo "==> unit and integration tests (moto)"
	$(VENV)/bin/python -m pytest tests --ignore=tests/e2e -q

e2e: $(VENV)/.installed browser
	@echo "==> end-to-end tests through the local stack"
	$(VENV)/bin/python -m pytest tests/e2e -q

screenshots: $(VENV)/.installed browser ## the console's screenshots in docs/images (from its browser tests)
	CONSOLE_SCREENSHOTS=docs/images $(VENV)/bin/python -m pytest tests/e2e/test_console.py -q

build: $(TOOLS)/.installed ## sam build (arm64 layer with pinned dependencies)
	PATH="$(SAM_PATH)" $(TOOLS)/bin/sam build

invoke: $(VENV)/.installed ## run a function in-process, like sam local invoke: make invoke FUNCTION=DirectusTriggerFunction EVENT=events/directus/create.json
	@test -n "$(FUNCTION)" -a -n "$(EVENT)" || { echo "usage: make invoke FUNCTION=<logical id> EVENT=<events/...json>"; exit 2; }
	$(VENV)/bin/python -m local_stack invoke $(FUNCTION) $(EVENT)

replay: $(VENV)/.installed ## send an event file to the running local stack: make replay EVENT=events/directus/create.json
	@test -n "$(EVENT)" || { echo "usage: make replay EVENT=<events/...json>"; exit 2; }
	$(VENV)/bin/python -m local_stack replay $(EVENT)

relay: $(VENV)/.installed ## operate a stack (docs/operating.md): make relay ARGS="--local status"; `source .venv/bin/activate` puts `relay` on PATH
ifeq ($(strip $(ARGS)),)
	@$(VENV)/bin/relay --help
	@echo; echo 'make relay ARGS="--local status" runs a command. To type `relay` yourself: source $(VENV)/bin/activate (or call $(VENV)/bin/relay).'
else
	$(VENV)/bin/relay $(ARGS)
endif

bench: $(VENV)/.installed ## every performance figure side by side (about 14 minutes): bench/results.md and results.json
	PATH="$(SAM_PATH)" $(VENV)/bin/python -m bench $(ARGS)

bench-drain: $(VENV)/.installed ## drain-throughput benchmark: a burst of Loops events vs its 10/s limit (ARGS="--events 200")
	$(VENV)/bin/python -m bench.drain $(ARGS)

docs: $(VENV)/.installed ## regenerate docs/configuration-reference.md from the models in clay_relay (config, settings)
	$(VENV)/bin/python scripts/config_reference.py

clean: ## remove virtualenvs and build output
	rm -rf $(VENV) $(TOOLS) $(CHECKOV) .aws-sam .local-stack .pytest_cache .ruff_cache

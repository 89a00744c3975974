# buildflow: `make demo` shows it working, `make test` checks everything. `make help` lists the rest.
SHELL := /bin/bash
# The first Python 3.11+ that can make a venv; the distribution's /usr/bin/python3 first, because it is built with
# PGO and LTO and starts and runs about a quarter faster than a plain source build (pyenv). PYTHON=... overrides.
PYTHON ?= $(shell for candidate in /usr/bin/python3 python3; do \
  $$candidate -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$candidate; break; }; \
  done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "buildflow needs Python 3.11 or newer with venv (Debian: apt-get install python3-venv)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## Create .venv with buildflow and the development tools

.PHONY: demo
demo: $(STAMP) ## Validate, plan and draw the shipped pipelines
	@for pipeline in pipelines/*/buildflow.yaml; do \
	  echo "== $$pipeline"; \
	  $(BIN)/buildflow validate -f $$pipeline || exit $$?; \
	  $(BIN)/buildflow plan -f $$pipeline || exit $$?; \
	  echo; $(BIN)/buildflow graph -f $$pipeline || exit $$?; echo; \
	done
	@echo "== the t2t hierarchy as Mermaid (paste into a README or a merge request):"
	@$(BIN)/buildflow graph -f pipelines/t2t/buildflow.yaml --format mermaid

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format) and mypy
	$(BIN)/ruff check buildflow tests bench
	$(BIN)/ruff format --check buildflow tests bench
	$(BIN)/mypy

.PHONY: test
test: lint ## Install what the tests need, lint, and run every test
	$(BIN)/pytest

.PHONY: bench-plan
bench-plan: $(STAMP) ## Benchmark plan of a 5,000-target tree beside docker buildx bake (writes bench/RESULTS.md)
	scripts/engine.sh install
	$(BIN)/python bench/plan_scale.py

.PHONY: bench
bench: bench-plan ## Run every benchmark

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

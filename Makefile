# buildflow: `make demo` shows it working, `make test` checks everything. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "buildflow needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable '.[dev]' --config-settings editable_mode=compat
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

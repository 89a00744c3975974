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

.PHONY: engine
engine: ## Start a Docker engine, buildx and a registry on 127.0.0.1:5000 (installing them on a bare Debian)
	scripts/engine.sh up

.PHONY: engines
engines: ## Start extra engines for the multi-builder tests and benchmarks: scripts/engine.sh up --engines 3 --classic
	scripts/engine.sh up --engines 3 --classic

DEMO := pipelines/demo/buildflow.yaml

.PHONY: browser
browser: ## Install Debian's chromium (headless) for the test that opens the HTML report, when missing
	scripts/browser.sh install

.PHONY: demo
demo: $(STAMP) engine ## Build the demo hierarchy (Debian -> Python -> NumPy/SciPy -> app), push it, run the app
	scripts/debian-rootfs.sh pipelines/demo/base/rootfs.tar
	@echo "== the hierarchy:"; $(BIN)/buildflow graph -f $(DEMO)
	@echo "== building it:"; $(BIN)/buildflow build -f $(DEMO) --report .buildflow/demo-report.json
	@echo "== the images are in the registry on 127.0.0.1:5000 under the tags above (try: curl -s"\
	  "http://127.0.0.1:5000/v2/demo/app/tags/list); every digest is in .buildflow/demo-report.json"
	@echo "== running localhost:5000/demo/app:latest:"
	docker run --rm --network none --pull always localhost:5000/demo/app:latest

.PHONY: lint
lint: $(STAMP) ## ruff (lint and format), mypy, and the import layers (import-linter)
	$(BIN)/ruff check buildflow tests bench
	$(BIN)/ruff format --check buildflow tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

.PHONY: unit
unit: $(STAMP) ## The fast tests alone: no engine, no registry (about 20 seconds)
	$(BIN)/pytest -m "not integration"

.PHONY: test
test: lint engines browser ## Install what the tests need (engines, registry, browser), lint, and run every test
	$(BIN)/pytest

.PHONY: bench-plan
bench-plan: $(STAMP) ## Benchmark plan of a 5,000-target tree beside docker buildx bake --print
	scripts/engine.sh install
	cd bench && ../$(BIN)/python plan_scale.py

.PHONY: bench-import
bench-import: $(STAMP) ## Benchmark init of a Dockerfile tree, import bake of 5,000 targets then plan, beside bake --print
	scripts/engine.sh install
	cd bench && ../$(BIN)/python import_bake.py

.PHONY: bench-build
bench-build: $(STAMP) engine ## Benchmark a cold pushed build of the 21-target tree beside docker buildx bake
	cd bench && ../$(BIN)/python build_tree.py

.PHONY: bench-noop
bench-noop: $(STAMP) engine ## Benchmark a re-run of the 21-target tree with nothing changed beside a warm bake
	cd bench && ../$(BIN)/python noop_rerun.py

.PHONY: bench-registry
bench-registry: $(STAMP) engine ## Benchmark status of 1,000 and 5,000 targets against the loopback registry, never built and up to date
	cd bench && ../$(BIN)/python registry_lookup.py

.PHONY: bench-cutoff
bench-cutoff: $(STAMP) engine ## Benchmark a re-run after a comment change in the root, with and without early cutoff, beside bake
	cd bench && ../$(BIN)/python cutoff_rerun.py

.PHONY: bench-gates
bench-gates: $(STAMP) engine ## Benchmark tests, lint and size reports on the 21-target tree beside bake plus scripted checks
	cd bench && ../$(BIN)/python quality_gates.py

.PHONY: bench-builders
bench-builders: $(STAMP) engines ## Benchmark a wide tree on a pool of 1, 2 and 3 engines
	cd bench && ../$(BIN)/python builders.py

.PHONY: bench-reliability
bench-reliability: $(STAMP) engine ## Pushed runs through a registry failing 30% of requests: nothing lost or half-published
	cd bench && ../$(BIN)/python reliability.py

.PHONY: bench-hostile
bench-hostile: $(STAMP) ## Every hostile pipeline file through buildflow validate: exit 2, one line, no traceback
	cd bench && ../$(BIN)/python hostile_files.py

.PHONY: bench
bench: bench-plan bench-import bench-registry bench-build bench-builders bench-noop bench-cutoff bench-gates bench-reliability bench-hostile ## Run every benchmark (results in bench/RESULTS.md)

.PHONY: dist
dist: $(STAMP) ## Build the wheel and the source archive into dist/ (for pipx install dist/buildflow-*.whl)
	rm -rf dist
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation -w dist .
	$(BIN)/python -m hatchling build --target sdist --directory dist
	@ls dist

.PHONY: clean
clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) dist .mypy_cache .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

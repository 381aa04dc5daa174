# Everything starts from `make check` or `make test`; both build .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

MODEL ?= sample_models/healthy.keras
OUT ?= qcheck-report
CHECK_ARGS := $(MODEL) --out $(OUT)
ifdef CALIB
CHECK_ARGS += --calib $(CALIB)
endif
ifdef EVAL
CHECK_ARGS += --eval $(EVAL)
endif
ifdef TARGETS
CHECK_ARGS += --targets $(TARGETS)
endif

.PHONY: check test test-compat test-all lint demo bench bench-zoo clean

# constraints.txt is the lock file: the exact stack `make check` and `make test` run on.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# Bytecode for qcheck's own modules, as pip writes it for a package it installs but not for an
# editable one: where writing bytecode is turned off (PYTHONDONTWRITEBYTECODE, as in many
# containers and on this project's machines), each of a check's three processes compiled
# qcheck's modules again on every run (docs/installing.md).
SOURCES := $(shell find qcheck converters -name '*.py')
COMPILE := -m compileall -q qcheck converters > /dev/null
BYTECODE := $(VENV)/.bytecode

$(BYTECODE): $(STAMP) $(SOURCES)
	$(BIN)/python $(COMPILE)
	touch $(BYTECODE)

# The oldest stack qcheck supports (constraints-compat.txt), in a virtual environment of its
# own, running the representative subset marked `compat`.
COMPAT_VENV := .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed

$(COMPAT_STAMP): pyproject.toml constraints-compat.txt
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -c constraints-compat.txt -e '.[test]'
	touch $(COMPAT_STAMP)

$(COMPAT_VENV)/.bytecode: $(COMPAT_STAMP) $(SOURCES)
	$(COMPAT_VENV)/bin/python $(COMPILE)
	touch $(COMPAT_VENV)/.bytecode

check: $(BYTECODE)
	$(BIN)/qcheck check $(CHECK_ARGS)

test: $(BYTECODE)
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist worksteal --timeout 600 -q

test-compat: $(COMPAT_VENV)/.bytecode
	$(COMPAT_VENV)/bin/python -m pytest -m compat -n 2 --dist worksteal --timeout 900 -q

test-all: $(BYTECODE)
	$(BIN)/python -m pytest -n 2 --dist worksteal --timeout 1800 -q

lint: $(STAMP)
	$(BIN)/ruff check qcheck converters tests sample_models benchmarks
	$(BIN)/mypy

demo: $(BYTECODE)
	$(BIN)/python sample_models/demo.py

bench: $(BYTECODE)
	$(if $(MODELS),MODELS=$(MODELS)) $(if $(REPEATS),REPEATS=$(REPEATS)) $(BIN)/python benchmarks/run.py

bench-zoo: $(BYTECODE)
	$(BIN)/python benchmarks/zoo.py

clean:
	rm -rf $(VENV) $(COMPAT_VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache

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

# The oldest stack qcheck supports (constraints-compat.txt), in a virtual environment of its
# own, running the representative subset marked `compat`.
COMPAT_VENV := .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed

$(COMPAT_STAMP): pyproject.toml constraints-compat.txt
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -c constraints-compat.txt -e '.[test]'
	touch $(COMPAT_STAMP)

check: $(STAMP)
	$(BIN)/qcheck check $(CHECK_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist worksteal --timeout 600 -q

test-compat: $(COMPAT_STAMP)
	$(COMPAT_VENV)/bin/python -m pytest -m compat -n 2 --dist worksteal --timeout 900 -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal --timeout 1800 -q

lint: $(STAMP)
	$(BIN)/ruff check qcheck converters tests sample_models benchmarks
	$(BIN)/mypy

demo: $(STAMP)
	$(BIN)/python sample_models/demo.py

bench: $(STAMP)
	$(if $(MODELS),MODELS=$(MODELS)) $(BIN)/python benchmarks/run.py

bench-zoo: $(STAMP)
	$(BIN)/python benchmarks/zoo.py

clean:
	rm -rf $(VENV) $(COMPAT_VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache

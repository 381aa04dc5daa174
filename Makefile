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

.PHONY: check test test-all lint demo bench bench-zoo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

check: $(STAMP)
	$(BIN)/qcheck check $(CHECK_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 --timeout 600 -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --timeout 1800 -q

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
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache

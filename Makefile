# elman: two commands do all setup on a fresh machine.
#   make demo   train -> quantize -> codegen -> verify -> mcu on built-in data
#   make test   the test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.elman-installed
RUN    ?= runs/demo
PYTEST_ARGS ?=
# PlatformIO (its `pio pkg pack` validates the --package platformio manifest) lives in an
# environment of its own: it pins its own click.
PIO_VENV ?= .venv-pio
PIO      := $(PIO_VENV)/bin/pio

.PHONY: demo test test-all lint bench sysdeps clean help

help:
	@echo "make demo     run the whole pipeline on built-in data (BasicMotions) into $(RUN)"
	@echo "make test     run the test suite (installs what it needs)"
	@echo "make test-all also the slow tests (full-size training)"
	@echo "make lint     ruff"
	@echo "make bench    benchmark scripts under bench/ (tables + JSON in bench/results/)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	# aeon ships the UEA/UCR .ts files; elman reads them itself, so no dependencies.
	$(PY) -m pip install -q --no-deps "aeon==1.6.0"
	@touch $(STAMP)

sysdeps:
	@bash scripts/system-deps.sh --with-optional

demo: $(STAMP) sysdeps
	$(VENV)/bin/elman run --data sensor:basicmotions $(RUN)

$(PIO):
	@test -x $(PIO_VENV)/bin/python || $(PYTHON) -m venv $(PIO_VENV)
	@$(PIO_VENV)/bin/python -m pip install -q platformio \
		|| echo "PlatformIO could not be installed: its manifest test will be skipped"

test: $(STAMP) sysdeps $(PIO)
	ELMAN_PIO=$(abspath $(PIO)) $(PY) -m pytest -m "not slow" -n 2 $(PYTEST_ARGS)

test-all: $(STAMP) sysdeps $(PIO)
	ELMAN_PIO=$(abspath $(PIO)) $(PY) -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP) sysdeps
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf runs build *.egg-info .pytest_cache

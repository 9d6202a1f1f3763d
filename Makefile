# Two commands do all the set-up on a fresh machine:
#   make book   - create .venv, install the project, build the book (executing the notebooks)
#   make test   - same set-up, then the default test suite
# Both are idempotent: the install reruns only when pyproject.toml changes.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
# Where torch comes from. Empty: decide by the machine (CPU wheel without a GPU, PyPI's CUDA
# build with one). To force a CUDA build on a machine without nvidia-smi, e.g.:
#   make test TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_INDEX ?=
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
PYTEST_ARGS ?=

.PHONY: setup test test-slow test-explore test-browser test-all book book-clean lab bench bench-quick clean help

help:
	@echo "make book | test | test-slow | test-explore | test-browser | test-all | lab | bench | bench-quick | clean"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# torch first, so the project's `torch>=...` requirement is already met and never pulls a
# multi-GB CUDA wheel by accident on a CPU-only machine.
$(VENV)/.torch: | $(PY)
	@set -e; \
	if $(PY) -c "import torch" 2>/dev/null; then \
	  echo "torch $$($(PY) -c 'import torch; print(torch.__version__)') already in $(VENV)"; \
	elif [ -n "$(TORCH_INDEX)" ]; then \
	  echo "Installing torch==$(TORCH_VERSION) from $(TORCH_INDEX)"; \
	  $(PY) -m pip install -q --index-url "$(TORCH_INDEX)" "torch==$(TORCH_VERSION)"; \
	elif command -v nvidia-smi >/dev/null 2>&1; then \
	  echo "GPU found (nvidia-smi): installing torch==$(TORCH_VERSION), the CUDA build from PyPI"; \
	  $(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	else \
	  echo "No GPU found: installing the CPU build of torch==$(TORCH_VERSION)."; \
	  echo "  (for CUDA: make ... TORCH_INDEX=https://download.pytorch.org/whl/cu128)"; \
	  $(PY) -m pip install -q --index-url "$(TORCH_CPU_INDEX)" --timeout 15 --retries 0 \
	    "torch==$(TORCH_VERSION)" 2>/dev/null \
	  || $(PY) -m pip install -q "torch==$(TORCH_VERSION)"; \
	fi
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install -q -e ".[book,test]"
	@touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

test-explore: setup  # the property tests with 2,000 fresh random examples each (~minutes)
	HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q $(PYTEST_ARGS) \
		$$(grep -l "@given" tests/*.py)

# The strict book build: a failing cell, anything a cell writes to stderr, or any Sphinx
# warning fails it. Notebooks re-execute only when their code, gqa_lib, data/ or the package
# versions change (execution cache, see gqa_lib/book/sphinx_ext.py): a rebuild of nothing takes seconds.
# Then the notebooks' markdown gets the values this build computed, for Jupyter and Colab
# (gqa_lib/book/prose_refresh.py; with `--check` it only reports).
book: setup
	$(VENV)/bin/jupyter-book build book -W -n --keep-going
	$(PY) -m gqa_lib.book.prose_refresh notebooks/*.ipynb

book-clean:
	rm -rf book/_build

# Headless Chromium on the built book, network cut off (needs Debian's chromium and
# chromium-driver: apt-get install -y chromium chromium-driver).
test-browser: book
	$(PY) -m pytest -q -m browser $(PYTEST_ARGS)

# As root (a container, a cloud VM) Jupyter refuses to start without --allow-root.
LAB_FLAGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
lab: setup
	$(PY) -m pip install -q -e ".[lab]"
	$(VENV)/bin/jupyter lab $(LAB_FLAGS) notebooks/

clean:
	rm -rf $(VENV) book/_build .pytest_cache

# Two entry points for a newcomer: `make demo` (install + train the default recipe) and `make test`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install data demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch goes in first, pinned, so the project's torch range adds nothing (no multi-GB CUDA build)
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# Debian's package puts the real Fashion-MNIST in /usr/share/datasets; without root, convcoach downloads it
data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; fi

demo: install data
	$(BIN)/convcoach train --out runs/demo

test: install data
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks

bench: install data
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/default_recipe.py

clean:
	rm -rf $(VENV) runs .pytest_cache

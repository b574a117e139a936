# civicsense — the two commands: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo test bench soak lint format venv system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

## system packages the tests and the demo use when present (mosquitto)
system-deps:
	@bash scripts/system-deps.sh

demo: venv system-deps
	$(BIN)/civicsense demo

test: venv system-deps
	$(BIN)/pytest

bench: venv system-deps
	PYTHONPATH=. $(BIN)/python -m bench

## 20,000 simulated sensors for 10 minutes through two ingest workers: no loss, flat memory,
## lag under 1 s (bench/soak.py; figures in docs/benchmarks.md)
soak: venv system-deps
	PYTHONPATH=. $(BIN)/python -m bench.soak --json var/soak.json

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy core ingest devices parking alerts catalog dashboard bench

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis

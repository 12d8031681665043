# Two commands for a fresh machine:
#   make serve   install into .venv and start the gateway on SQLite
#   make test    install into .venv (and the JS client) and run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install lint js bench memory clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

tests/js/node_modules/.package-lock.json: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --silent

js: tests/js/node_modules/.package-lock.json

serve: install
	$(BIN)/daylite serve

test: install js
	$(BIN)/python -m pytest tests

# Load benchmarks (not part of the test suite): needs wrk, from Debian.
bench: install
	command -v wrk >/dev/null || apt-get install -y -q wrk
	$(BIN)/python -m benchmarks.run

memory: install
	$(BIN)/python -m benchmarks.memory

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/js/node_modules

# zhijin: two commands.  `make run` starts the platform with demo data; `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ./var
PORT   ?= 8000

.PHONY: run test lint typecheck pytest bench clean

$(BIN)/zhijin: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/zhijin

run: $(BIN)/zhijin
	@test -f $(DATA)/genesis.json || $(BIN)/zhijin chain init --data $(DATA) --demo
	$(BIN)/zhijin serve --data $(DATA) --port $(PORT)

test: $(BIN)/zhijin lint typecheck pytest

lint: $(BIN)/zhijin
	$(BIN)/ruff check zhijin tests bench
	$(BIN)/ruff format --check zhijin tests bench

typecheck: $(BIN)/zhijin
	$(BIN)/mypy zhijin

pytest: $(BIN)/zhijin
	$(BIN)/pytest

bench: $(BIN)/zhijin
	@for b in bench/*.py; do echo "# $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info

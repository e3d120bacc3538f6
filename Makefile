# zhijin: two commands.  `make run` starts the platform with demo data; `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ./var
PORT   ?= 8000

.PHONY: run test lint typecheck pytest bench clean nats-server chromium icu

$(BIN)/zhijin: pyproject.toml | icu
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
	$(BIN)/lint-imports

typecheck: $(BIN)/zhijin
	$(BIN)/mypy zhijin

# PyICU (UTS #39 skeletons for look-alike logins) builds against Debian's ICU.
icu:
	@pkg-config --exists icu-uc 2>/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq libicu-dev pkg-config)

# Cluster tests start their own NATS servers from the Debian package.
nats-server:
	@command -v nats-server >/dev/null 2>&1 || test -x /usr/sbin/nats-server || \
	  (apt-get update -qq && apt-get install -y -qq nats-server)

# Browser tests (tests/e2e) drive Debian's Chromium; Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (apt-get update -qq && apt-get install -y -qq chromium)

pytest: $(BIN)/zhijin nats-server chromium
	$(BIN)/pytest

bench: $(BIN)/zhijin nats-server
	@for b in bench/*.py; do echo "# $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info

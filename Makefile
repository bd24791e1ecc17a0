# The two set-up commands the README shows: `make demo` and `make test`.
# Both create .venv on first use and install the project with its dev extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test check lint bench clean browser azurite

# The dbt manifest the Dagster code location loads (nothing parses dbt at import time).
MANIFEST    := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -type f \( -name '*.sql' -o -name '*.yml' \) -print)

install: $(STAMP) $(MANIFEST)

# uv resolves and installs the same ranges as pip, downloading in parallel: seconds here against
# pip's 3 to 4 minutes on a fresh clone. It compiles the bytecode up front as pip does: where
# PYTHONDONTWRITEBYTECODE is set (this machine sets it) nothing would cache it later, and every
# process the suite starts would compile Dagster, pandas and MLflow from source again.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet 'uv>=0.9,<1'
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -e '.[dev]'
	touch $(STAMP)

$(MANIFEST): $(STAMP) $(DBT_SOURCES)
	$(BIN)/pulsemart datamart parse

demo: install
	$(BIN)/pulsemart up

# Headless Chromium for the dashboard test (Debian's package; needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Azurite, the Azure Storage emulator the cloud archive tests start (tests/integration/
# test_cloud_archive.py), installed from npm into a project-local folder.
AZURITE := .azurite/node_modules/.bin/azurite-blob

azurite: $(AZURITE)

$(AZURITE):
	npm install --prefix .azurite --no-audit --no-fund --loglevel=error azurite@3

# The static checks CI runs with the tests: ruff's formatter (`ruff format` applies it), ruff's
# linter (with bugbear and bandit rules) and mypy (configured in pyproject.toml). The dbt SQL's sqlfluff lint is itself a test
# (tests/unit/test_dbt_project.py), so `make test` does not run it twice.
check: install
	$(BIN)/ruff format --check pulsemart orchestration sensors ml benchmarks tests
	$(BIN)/ruff check pulsemart orchestration sensors ml benchmarks tests
	$(BIN)/mypy

# The static checks run while Chromium and Azurite install (those wait on the network and the
# disk more than on a core); then the tests. Three pytest-xdist workers on two cores, a module to
# a worker (module fixtures are set up once; tests/conftest.py starts the longest modules
# first), each worker with its own embedded PostgreSQL and broker. The suite waits on servers,
# subprocesses and timeouts more than it computes: two workers kept 1.4 of the two cores busy.
test:
	$(MAKE) --no-print-directory -j3 --output-sync=target check browser azurite
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 3 --dist loadscope --durations=20

lint: check
	$(BIN)/sqlfluff lint dbt_project

# wrk, the load generator `pulsemart bench serving` drives the API with (Debian's package).
bench: install
	@command -v wrk >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/pulsemart bench all

clean:
	-$(BIN)/pulsemart services down
	rm -rf $(VENV) .pulsemart

# The two commands of the quick start, and a few more for developers.
#   make demo    set up .venv, decide on the demo catalog, then serve the console, the design
#                API and the runtime on it (SQLite in demo-out/overture.db; decisions may say
#                when they happened, for overture demo-traffic; Ctrl-C stops it; PORT=8001)
#   make test    lint, type-check and run the whole test suite (what CI runs), on every core,
#                printing the 30 slowest tests; PostgreSQL and Redis are found on their usual
#                local ports (or OVERTURE_TEST_POSTGRES_URL / OVERTURE_TEST_REDIS_URL)
#   make check   while editing: lint, type-check and the tests not marked slow (under 2 min)
#   make bench   the rule and engine benchmarks (figures against a baseline measured in the same run)
# WORKERS=0 runs the tests in one process (pytest-xdist's -n); PYTEST_ARGS adds options.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_DIR ?= demo-out
PORT ?= 8000
WORKERS ?= auto
PYTEST_ARGS ?=
# --dist loadgroup: tests marked xdist_group share a worker (Spark's: one JVM)
PYTEST := $(BIN)/pytest -n $(WORKERS) --dist loadgroup $(PYTEST_ARGS)

.PHONY: demo test check lint bench clean

$(BIN)/overture: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

demo: $(BIN)/overture
	$(BIN)/overture init $(DEMO_DIR) --force
	$(BIN)/overture validate $(DEMO_DIR)
	$(BIN)/overture decide $(DEMO_DIR) --placement web_home_hero --placement web_account_sidebar \
		--profile-id C0000042 --explain
	$(BIN)/overture serve --demo --accept-decision-times --database $(DEMO_DIR)/overture.db --port $(PORT)

lint: $(BIN)/overture
	$(BIN)/ruff check src tests benchmarks docs/examples
	$(BIN)/ruff format --check src tests benchmarks docs/examples
	$(BIN)/mypy

test: lint
	$(PYTEST) --durations=30

check: lint
	$(PYTEST) -m "not slow" --durations=10

bench: $(BIN)/overture
	$(BIN)/python -m benchmarks.rules
	$(BIN)/python -m benchmarks.engine
	$(BIN)/python -m benchmarks.design
	$(BIN)/python -m benchmarks.batch

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .ruff_cache .pytest_cache .hypothesis

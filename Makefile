# Pixazo video job orchestrator. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# Branch coverage of the product packages (the dev tools are omitted in pyproject.toml); the
# floor is the unit tests' own figure (92.3% when set), so the integration tests only add to it.
COVERAGE = --cov=orchestrator --cov=webhooks --cov=workers --cov=ops --cov-branch \
           --cov-report=term:skip-covered --cov-fail-under=92

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit test-integration test-chaos test-model lint format bench bench-reconcile bench-console bench-pipeline bench-http bench-metrics bench-memory clean

help: ## Show this help
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install the project with its dev extras

demo: $(STAMP) ## Start everything (embedded Redis if REDIS_URL is unset), run one job per model
	$(BIN)/orchestrator demo

# The chaos and browser tests mostly wait (held connections, failovers, restarts), so they run
# beside the rest, on their own redis-server, and their output follows when both are done.
CHAOS_LOG = .pytest-chaos.log

test: $(STAMP) ## Run the whole test suite (unit + real-process integration; chaos and browser alongside)
	@ORCHESTRATOR_TEST_REDIS=own $(BIN)/python -m pytest -m "chaos or browser" -q \
	    -p no:cacheprovider > $(CHAOS_LOG) 2>&1 & chaos=$$!; \
	$(BIN)/python -m pytest -m "not chaos and not browser" -q $(COVERAGE); rest=$$?; \
	wait $$chaos; rc=$$?; echo "--- chaos and browser tests"; cat $(CHAOS_LOG); \
	if [ $$rc -eq 5 ]; then rc=0; fi; \
	echo "--- exit: rest $$rest, chaos and browser $$rc"; [ $$rest -eq 0 ] && [ $$rc -eq 0 ]

test-unit: $(STAMP) ## Unit tests only (fakeredis, no processes)
	$(BIN)/python -m pytest -m "not integration and not chaos and not browser" -q

test-integration: $(STAMP) ## Tests that start real processes
	$(BIN)/python -m pytest -m "integration" -q

test-chaos: $(STAMP) ## Fault-injection runs (kill -9, Redis restart, 402, 429 bursts)
	$(BIN)/python -m pytest -m "chaos" -q || [ $$? -eq 5 ]

test-model: $(STAMP) ## Stateful model tests, long profile (jobs: 5,000 examples; endpoint cap: 1,000)
	HYPOTHESIS_PROFILE=long $(BIN)/python -m pytest tests/model \
	    tests/webhooks/outbound/test_endpoint_model.py -q -p no:cacheprovider --timeout=0

lint: $(STAMP) ## ruff lint and format check, mypy, import contracts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP) ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: bench-reconcile bench-console bench-pipeline bench-http bench-metrics bench-memory bench-floor ## Run every benchmark

bench-reconcile: $(STAMP) ## Reconcile: 1,000,000 vs 10,000 stored jobs (1,000 due); catch-up rate of 20,000 due items
	$(BIN)/python -m benchmarks.bench_reconcile

bench-console: $(STAMP) ## Console job list: 1,000,000 vs 10,000 stored jobs
	$(BIN)/python -m benchmarks.bench_console

bench-metrics: $(STAMP) ## Hot-path cost of recording a metric vs nothing vs a Redis round trip
	$(BIN)/python -m benchmarks.bench_metrics

bench-pipeline: $(STAMP) ## Procfile processes + simulator + consumer, 60 and 100 jobs/s offered: loss, lag, CPU and Redis bytes per job
	$(BIN)/python -m benchmarks.bench_pipeline

bench-memory: $(STAMP) ## Redis bytes and keys per finished job (500 jobs through the deployment), per key type
	$(BIN)/python -m benchmarks.bench_memory

bench-floor: $(STAMP) ## The shape's floor: gunicorn, Celery hops and POSTs with no product code, as a ratio to the yardstick
	$(BIN)/python -m benchmarks.bench_floor

bench-http: $(STAMP) ## wrk against gunicorn: intake and Pixazo receiver req/s as ratios to a bare Flask view (needs wrk)
	$(BIN)/python -m benchmarks.bench_http

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) $(CHAOS_LOG) .pytest_cache .ruff_cache .mypy_cache .coverage htmlcov *.egg-info

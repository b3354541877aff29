# Candidate engagement scoring — developer commands. Everything runs from a local virtualenv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# run a second time on a Redis Cluster (3 masters, 1 replica each): the store, the scorer, the
# notifier and the read API (the failover test starts a cluster of its own in the first run)
CLUSTER_TESTS := tests/integration/engagement/store tests/integration/scorer tests/integration/notifier \
	tests/integration/ingest/test_read_api_ids.py tests/integration/ingest/test_read_api_guards.py \
	tests/integration/ingest/test_erasure.py tests/integration/ingest/test_answers_documented.py \
	--ignore=tests/integration/scorer/test_redis_failover.py

.PHONY: install run test chaos kafka lint format bench config-docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its test and dev extras

run: $(STAMP) ## the whole pipeline locally: broker, Redis, ingest, scorer, notifier, demo traffic
	$(BIN)/engagement dev

test: $(STAMP) kafka ## every test, against a real Kafka (Apache Kafka when Java and Maven are there) and a real Redis; then the store, scorer, notifier and read API on a Redis Cluster
	scripts/system_deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	ENGAGEMENT_TEST_REDIS=cluster $(BIN)/python -m pytest $(CLUSTER_TESTS) $(PYTEST_ARGS)

chaos: $(STAMP) ## the chaos suite (tests/chaos) at 90,000 events / 6,000 candidates over 60 s; make test runs it at 3,000 / 300
	CHAOS_EVENTS=90000 CHAOS_CANDIDATES=6000 CHAOS_SECONDS=60 CHAOS_FREEZE=8 $(BIN)/python -m pytest tests/chaos -s -p no:cacheprovider $(PYTEST_ARGS)

kafka: $(STAMP) ## fetch Apache Kafka from Maven Central into its cache, once (engagement.tools.local_kafka)
	$(BIN)/python -m engagement.tools.local_kafka || echo "make kafka: no Apache Kafka (see above); the tests run on Tansu"

lint: $(STAMP) ## ruff (lint, complexity <= 10, format check), mypy (strict; benchmarks too), import-linter (the layout's rules)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src/engagement services bench
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP) ## throughput and latency benchmarks (prints figures and their references)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/scorer.py
	$(BIN)/python bench/scorer_stages.py
	$(BIN)/python bench/alerts.py
	$(BIN)/python bench/erasure_fences.py
	$(BIN)/python bench/tier_sets.py

config-docs: $(STAMP) ## regenerate .env.example and the README configuration table
	$(BIN)/python scripts/config_reference.py write

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# fyp-features. `make demo` and `make test` work on a fresh machine (they run `make setup` first).
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FYP := $(BIN)/fyp
STAMP := $(VENV)/.installed
CONFIG ?= configs/local.yaml

.PHONY: setup system-deps up down status demo test test-fast test-unit bench clean cluster-up cluster-down

setup: system-deps $(STAMP)
	$(FYP) --config $(CONFIG) setup

# Debian packages the project needs: Redis (tests start their own instances of it) and a JDK
# (Flink's JVM, and javac for the parser UDF), socat (TLS in front of the broker: stack.broker_tls_*).
# Installed only when missing.
system-deps:
	@need=""; \
	command -v redis-server >/dev/null || need="$$need redis-server"; \
	command -v javac >/dev/null || need="$$need openjdk-17-jdk-headless"; \
	command -v socat >/dev/null || need="$$need socat"; \
	if [ -n "$$need" ]; then \
	  echo "installing:$$need"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$need) >/dev/null; \
	fi

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null || { echo "$(PY) not found (Python 3.11 is required)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $(STAMP)

up: setup
	$(FYP) --config $(CONFIG) up

down:
	@test -x $(FYP) && $(FYP) --config $(CONFIG) down || true

status:
	$(FYP) --config $(CONFIG) status

# A standalone Flink cluster (JobManager + TaskManager) from the apache-flink package; jobs go to
# it with `fyp submit JOB` (docs/operations.md "Running on a Flink cluster").
cluster-up: setup
	$(FYP) --config $(CONFIG) cluster up

cluster-down:
	@if test -x $(FYP); then $(FYP) --config $(CONFIG) cluster down; fi

demo: up
	$(FYP) --config $(CONFIG) demo

# Two test processes (pytest-xdist), each with its own broker and Redis, a test file at a time:
# the tests wait on outages, paced streams and the JVM's start (planning uses one core), and
# the other process fills those waits (docs/testing.md: 1,298 s for tests/integration alone,
# 819 s with two).
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

# The default run (and CI's): every test, crash, restart, outage and savepoint tests included.
# test-fast leaves out the `long` ones (the crash, restart and outage tests) while working.
test: setup
	$(PYTEST) --durations=15 tests

test-fast: setup
	$(PYTEST) -m "not long" tests

test-unit: setup
	$(PYTEST) tests/unit

bench: up
	$(BIN)/python -m bench.floor --config $(CONFIG)
	$(BIN)/python -m bench.engagement --config $(CONFIG) --job features --out bench/results/features_live.json
	$(BIN)/python -m bench.engagement --config $(CONFIG)
	$(BIN)/python -m bench.feature_jobs --config $(CONFIG)
	$(BIN)/python -m bench.spikes --config $(CONFIG)
	$(BIN)/python -m bench.spike_quality --config $(CONFIG)
	$(BIN)/python -m bench.spike_quality --config $(CONFIG) --news-event-at 3 --out bench/results/spike_quality_news_event.json
	$(BIN)/python -m bench.spike_quality --config $(CONFIG) --shapes viral --out bench/results/spike_quality_viral.json
	$(BIN)/python -m bench.read_path --config $(CONFIG)
	$(BIN)/python -m bench.writer --config $(CONFIG)

clean: down cluster-down
	rm -rf .fyp/run .fyp/logs .fyp/checkpoints .fyp/cluster

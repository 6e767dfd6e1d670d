# MusicBud Recommendations. `make run` serves the API on 127.0.0.1:8000; `make test` runs the test suite.
# Both install what is missing first (a .venv with the pinned requirements, LightFM, Neo4j's jars).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
export OPENBLAS_NUM_THREADS ?= 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install deps-debian run serve neo4j-start neo4j-stop test bench bench-quality bench-smoke clean \
	bench-deps bench-serving bench-training bench-memory redis-start redis-stop bench-scale bench-training-curve

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt -r requirements-dev.txt
	$(PY) -c "import lightfm, neo4j, neomodel, django; print('python deps ok: lightfm', lightfm.__version__)"
	@touch $@

neo4j_launcher/target/neo4j-launcher-1.0.jar: neo4j_launcher/pom.xml $(shell find neo4j_launcher/src -name '*.java')
	$(PY) scripts/neo4j_local.py build

install: $(VENV)/.installed neo4j_launcher/target/neo4j-launcher-1.0.jar

# Debian packages of the local servers the tests start (Redis, PostgreSQL, HAProxy, Chromium + chromedriver; wrk is
# optional): apt-get installs what is missing, which needs root.
deps-debian: $(VENV)/.installed
	@$(PY) scripts/local_services.py install all || { echo "make: the Debian packages named above are missing:" \
		"run 'make deps-debian' as root, or apt-get install them, then run make again" >&2; exit 1; }

neo4j-start: install
	$(PY) scripts/neo4j_local.py start

neo4j-stop:
	$(PY) scripts/neo4j_local.py stop

# Shared state (several hosts): `make run` starts a Redis on 127.0.0.1:$(REDIS_PORT) with a generated password (its
# URL in var/redis_url, which settings read when REDIS_URL is unset); without redis-server it runs single-host.
REDIS_PORT ?= 6379

redis-start: install
	@if [ -n "$$REDIS_URL" ]; then echo "REDIS_URL is set: using that Redis"; else \
		$(PY) scripts/local_services.py redis-start --port $(REDIS_PORT) || \
		echo "make: no local Redis (make deps-debian installs redis-server): serving single-host" >&2; fi

redis-stop:
	$(PY) scripts/local_services.py redis-stop

# The start sequence (migrate, constraints, demo graph when empty, models when missing: scripts/start.py), then the
# server; it ends by printing the API, docs and dashboard URLs and, the first time, the demo logins.
run: neo4j-start redis-start
	$(PY) -m scripts.start prepare
	$(MAKE) serve

TRAIN_EVERY ?= 60m
# Every worker's /metrics counters live in files here (prometheus-client's multiprocess mode), emptied at each start.
METRICS_DIR ?= var/prometheus

serve:
	@rm -rf $(METRICS_DIR) && mkdir -p $(METRICS_DIR)
	@PROMETHEUS_MULTIPROC_DIR=$(abspath $(METRICS_DIR)) MUSICBUD_TRAIN_EVERY=$${MUSICBUD_TRAIN_EVERY-$(TRAIN_EVERY)} \
		$(VENV)/bin/uvicorn musicbud.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) \
		--loop uvloop --http httptools --no-access-log --lifespan off & server=$$!; \
	trap 'kill -TERM $$server 2>/dev/null; wait $$server' INT TERM; \
	$(PY) -m scripts.start banner http://$(HOST):$(PORT); wait $$server

test: install deps-debian
	$(PY) -m pytest

bench-quality: install
	$(PY) -m bench.quality

# Discovery (issue 15): trending vs popularity, the diversity curve, new items (MovieLens, offline)
.PHONY: bench-discovery
bench-discovery: install
	$(PY) -m bench.discovery

# Performance benchmarks (bench/harness.py starts their own Neo4j and server; seeded graphs cached in var/bench/).
bench-deps:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

bench-serving: install bench-deps
	$(PY) -m bench.serving

bench-training: install
	$(PY) -m bench.training

bench-memory: install
	$(PY) -m bench.memory

# Several hosts on this machine (127.0.0.2, 127.0.0.3 behind HAProxy, one Redis) and the training cost curve to 10M.
bench-scale: install bench-deps
	$(PY) -m bench.scale

bench-training-curve: install
	$(PY) -m bench.training_curve

bench-smoke: install bench-deps
	$(PY) -m bench.training --smoke
	$(PY) -m bench.serving --smoke
	$(PY) -m bench.memory --smoke

bench: install bench-deps
	$(PY) -m bench.quality
	$(PY) -m bench.training
	$(PY) -m bench.serving
	$(PY) -m bench.memory

# A/B testing (issue 14): the simulation of bench/ab_simulation.py (~1 minute, no Neo4j)
bench-ab-simulation: install
	$(PY) -m bench.ab_simulation

clean:
	rm -rf $(VENV) neo4j_launcher/target

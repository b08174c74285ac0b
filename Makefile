# UrbanFlow — the two commands are `make demo` and `make test`; everything else is a building block.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON      ?= python3.11
UV_VERSION  := 0.9.30
TOOLS       := .tools
UV          := $(TOOLS)/bin/uv
VENV        := .venv
VPY         := $(VENV)/bin/python
UF          := $(VENV)/bin/urbanflow
KAFKA_DIR   := infra/kafka
KAFKA_LIBS  := $(KAFKA_DIR)/libs/.fetched
KAFKACTL    := $(KAFKA_DIR)/kafkactl
SINKCTL     := infra/sink/sinkctl
AIRFLOWCTL  := infra/airflow/airflowctl
SUPERSETCTL := infra/superset/supersetctl
# Superset has its own venv (SQLAlchemy 1.4); supersetctl stamps it with its lock's hash.
SUPERSET_VENV := .venv-superset/.uf-lock-sha256
# Debian's Chromium drives the Superset browser test (never a browser download).
CHROMIUM    := /usr/bin/chromium
export UF_VAR_DIR ?= $(CURDIR)/var
# sqlfluff sometimes warns about leaked semaphores on exit (sqlfluff#4080): harmless, silenced.
SQLFLUFF    := cd dbt_project && PYTHONWARNINGS=ignore:resource_tracker:UserWarning ../$(VENV)/bin/sqlfluff lint models tests macros snapshots --processes 2 -q

.PHONY: help install kafka-libs up down demo publish api test test-fast lint format bench bench-venv bench-api bench-meters bench-dbt clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(UV):
	@echo "==> bootstrapping uv $(UV_VERSION) into $(TOOLS)/"
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: $(UV) requirements.lock pyproject.toml
	@echo "==> creating $(VENV) from requirements.lock"
	@$(UV) venv -q --allow-existing --python $(PYTHON) $(VENV)
	@$(UV) pip install -q --python $(VPY) -r requirements.lock
	@$(UV) pip install -q --python $(VPY) --no-deps -e .
	@touch $@

install: $(VENV)/.installed $(KAFKA_LIBS) $(SUPERSET_VENV) ## create the pinned venvs and fetch Kafka (cached)

$(SUPERSET_VENV): $(UV) infra/superset/requirements.lock
	@$(SUPERSETCTL) install

$(KAFKA_LIBS): $(KAFKA_DIR)/pom.xml
	@echo "==> fetching Apache Kafka runtime jars with Maven (cached in ~/.m2)"
	@rm -rf $(KAFKA_DIR)/libs
	@mvn -q -B -f $(KAFKA_DIR)/pom.xml dependency:copy-dependencies -DoutputDirectory=libs
	@touch $@

kafka-libs: $(KAFKA_LIBS) ## fetch the Kafka broker jars into infra/kafka/libs

up: install ## start Kafka, the sink service, Airflow (127.0.0.1:8081) and Superset (127.0.0.1:8088)
	@$(KAFKACTL) start
	@$(UF) topics apply
	@$(SINKCTL) start
	@# Airflow and Superset set up their metadata side by side (each waits on its own I/O a lot)
	@$(SUPERSETCTL) start & superset=$$!; $(AIRFLOWCTL) start; airflow=$$?; \
	  wait $$superset && exit $$airflow
	@$(SUPERSETCTL) sync
	@$(UF) partners superset-users

down: ## stop every process `make up` started: Superset, Airflow, the sink, Kafka
	-@$(SUPERSETCTL) stop
	-@$(AIRFLOWCTL) stop
	-@$(SINKCTL) stop
	@$(KAFKACTL) stop

demo: ## start the stack, run the sample world through Airflow to serving.duckdb, show the dashboards
	@$(MAKE) --no-print-directory -j3 install
	@$(MAKE) --no-print-directory up
	@$(UF) demo --airflow
	@echo "dashboards: http://127.0.0.1:$${UF_SUPERSET_PORT:-8088}/superset/dashboard/strategic-plan/ (also pipeline-health, my-feeds, one per theme)"

publish: $(VENV)/.installed ## quality gate (Great Expectations) on the marts; publish var/serving.duckdb if it passes
	@$(UF) publish

api: up ## serve the partner push API on 127.0.0.1:8080 (docs at /docs)
	@$(UF) api serve

$(CHROMIUM):
	@echo "==> installing Debian's chromium for the browser tests"
	@(apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) \
	  || echo "could not install chromium (needs root and Debian's mirror): the browser test will skip"

test: install $(CHROMIUM) ## install, start what is needed, run every test suite, stop what was started
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(SQLFLUFF)
	@bash tests/run.sh

test-fast: $(VENV)/.installed ## unit, contract and config tests only (no broker, no Kafka jars needed)
	@$(VENV)/bin/pytest -m "not integration" -q

lint: $(VENV)/.installed ## ruff check + format check, sqlfluff on the dbt project (venv only: no Kafka, no broker)
	@$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	@$(SQLFLUFF)

format: $(VENV)/.installed ## apply ruff formatting and fixes (venv only)
	@$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

# dlt's pins clash with Airflow's: the dlt peer of `make bench` gets its own venv, never the lock.
BENCH_VENV := .venv-bench/.uf-dlt-1.31.0
$(BENCH_VENV): $(UV)
	@echo "==> creating .venv-bench (dlt 1.31.0 for the benchmark's dlt peer)"
	@$(UV) venv -q --allow-existing --python $(PYTHON) .venv-bench
	@$(UV) pip install -q --python .venv-bench/bin/python "dlt[duckdb,parquet]==1.31.0" \
	  duckdb==2.0.1 pyarrow==26.0.1 kafka-python==3.0.12 crc32c==2.9.post0 orjson==3.13.0
	@touch $@

bench-venv: $(BENCH_VENV) ## the separate venv of the dlt benchmark peer (.venv-bench)

bench: up $(BENCH_VENV) ## sink vs raw consume, dlt and per-row INSERT, + API and dbt: one table, bench/results.json
	@$(VPY) bench/sink_throughput.py

bench-api: up ## partner API throughput (50 clients x 100-event batches) vs the raw producer
	@$(VPY) bench/api_throughput.py

bench-meters: up ## streaming meter producer rate vs raw kafka-python
	@$(VPY) bench/meter_stream.py --rate 5000 --seconds 10

bench-dbt: install ## full vs incremental dbt build on 5M raw events
	@$(VPY) bench/dbt_incremental.py --events 5000000 --new 10000

clean: down ## remove local state (var/), keeps venvs and Kafka jars
	@rm -rf var

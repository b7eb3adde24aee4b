# featurekiln: `make demo` runs the sample views end to end; `make test` runs every test.
# Both set everything up themselves: system packages, .venv, pinned Python packages.

VENV    := .venv
PY      := $(VENV)/bin/python
KILN    := $(VENV)/bin/kiln
STAMP   := $(VENV)/.installed
DEMO_START ?= 2025-01-01
DEMO_END   ?= 2025-03-31
# The venv's bin first: spark-submit (from pyspark), airflow and kiln are found by name.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export KILN_WAREHOUSE ?= $(CURDIR)/warehouse
export KILN_DEFS ?= $(CURDIR)/feature_defs

.PHONY: setup system class-archive demo airflow test test-fast lint bench clean

setup: system $(STAMP) class-archive

# Java, redis-server and Chromium from Debian; the rest comes from PyPI and Maven Central.
system:
	@bash scripts/system_packages.sh

$(STAMP): requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip==25.3
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	@echo "resolving the pinned Spark jars once (Delta Lake, from Maven Central) ..."
	$(PY) -m featurekiln.internals.jars
	touch $(STAMP)

# The driver JVM's class archive, recorded once (about a minute) from a small run of the sample views;
# nothing to do when it exists for this Java, pyspark and featurekiln's jar. Later Spark starts are faster.
class-archive: $(STAMP)
	@$(PY) scripts/class_archive.py

# The whole product on the sample data, in about three minutes after set-up: each step says what it shows.
demo: setup
	@echo "== 1/6 sample raw events (purchases, clicks) into $(KILN_WAREHOUSE)/raw"
	@$(KILN) sample-data --start $(DEMO_START) --days 90
	@echo "== 2/6 check every definition in feature_defs/ and suite in expectations/"
	@$(KILN) validate
	@echo "== 3/6 backfill $(DEMO_START)..$(DEMO_END) through the quality gate (user_purchases warns on purpose)"
	@$(KILN) backfill --all --start $(DEMO_START) --end $(DEMO_END)
	@echo "== 4/6 the run history and where each report is"
	@$(KILN) report --last 3
	@echo "== 5/6 push the latest user_purchases snapshot to the online store (SQLite) and read one key back"
	@$(KILN) push user_purchases
	@$(KILN) get user_purchases user_id=7
	@echo "== 6/6 next: 'make airflow' starts the Airflow UI with one DAG per definition (http://localhost:8080)"

# Airflow UI with one DAG per definition (airflow standalone, SQLite, state in ./airflow_home).
airflow: setup
	bash scripts/airflow_local.sh

# Two workers, a test file each at a time (module fixtures stay in one process), in the order tests/conftest.py
# sorts them (the files with slow tests first, not by their number of tests); the slowest tests listed.
test: setup
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=30

# Every test that starts no JVM and no server (markers `spark` and `server`, set in
# tests/conftest.py from the fixtures a test uses).
test-fast: setup
	$(VENV)/bin/pytest -q -m "not spark and not server"

# ruff, pinned in requirements.txt; the rules are in pyproject.toml.
lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) bench/backfill.py
	$(PY) bench/incremental.py
	$(PY) bench/year.py
	$(PY) bench/scale.py
	$(PY) bench/dag_parse.py
	$(PY) bench/validation.py
	$(PY) bench/online.py
	$(PY) bench/training_set.py --rows 1000000,3000000 --keys 20000 --days 30

clean:
	rm -rf warehouse spark-warehouse .pytest_cache

# Two commands do everything: `make run` serves the registry, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint smoke bench bench-peers bench-client bench-soak clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## run: install, migrate, make sure an admin exists, and serve on http://$(HOST):$(PORT)
##      with the background-job worker (Geti imports) beside the server; the SECRET_KEY is made
##      once and kept in var/secret-key unless SECRET_KEY or SECRET_KEY_FILE is set
run: export SECRET_KEY_FILE ?= $(CURDIR)/var/secret-key
run: $(BIN)/.installed
	bash scripts/ensure-secret-key.sh "$$SECRET_KEY_FILE"
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_bucket
	$(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)
	BIN=$(BIN) bash scripts/run.sh $(HOST):$(PORT)

## test: the whole suite (PostgreSQL when DATABASE_URL is set, SQLite otherwise; S3 via moto),
##       after finding (or installing) a Chromium for the browser tests and skopeo for the OCI tests
test: $(BIN)/.installed-dev
	BIN=$(BIN) bash scripts/ensure-browser.sh
	bash scripts/ensure-skopeo.sh
	$(BIN)/python -m pytest

## lint: ruff (lint and format check) and no model change without its migration
lint: $(BIN)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

## smoke: start the default setup (SQLite + local files) and drive it with curl
smoke: $(BIN)/.installed
	bash scripts/smoke.sh

## bench: artifact throughput and memory vs direct boto3, metadata latency on PostgreSQL, a Geti
##        import's time and memory, OCI push and pull (not part of test)
bench: $(BIN)/.installed-dev
	$(BIN)/python bench/artifacts.py
	$(BIN)/python bench/metadata.py
	$(BIN)/python bench/geti_import.py
	$(BIN)/python bench/oci.py

## bench-peers: this registry beside MLflow's registry (installed in var/bench/mlflow-venv), same run
bench-peers: $(BIN)/.installed-dev
	$(BIN)/python bench/peers.py

## bench-client: push and pull of 1 GiB through the Python client vs boto3 on the same S3 endpoint
bench-client: $(BIN)/.installed-dev
	$(BIN)/python bench/client.py

## bench-soak: the served registry (as make run serves it) under 50 clients of reads and uploads for
##             10 minutes: errors, latencies and worker memory over time; fails on any 5xx
bench-soak: $(BIN)/.installed-dev
	$(BIN)/python bench/soak.py

clean:
	rm -rf $(VENV) var

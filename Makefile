# Two commands do everything: `make run` serves the registry, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run serve test smoke bench clean

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## run: install, migrate, make sure an admin exists, and serve on http://$(HOST):$(PORT)
##      with the background-job worker (Geti imports) beside the server
run: $(BIN)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_bucket
	$(BIN)/python manage.py ensure_admin --url http://$(HOST):$(PORT)
	BIN=$(BIN) bash scripts/run.sh $(HOST):$(PORT)

## test: the whole suite (PostgreSQL when DATABASE_URL is set, SQLite otherwise; S3 via moto)
test: $(BIN)/.installed-dev
	$(BIN)/python -m pytest

## smoke: start the default setup (SQLite + local files) and drive it with curl
smoke: $(BIN)/.installed
	bash scripts/smoke.sh

## bench: artifact throughput and memory vs direct boto3, then metadata latency on PostgreSQL (not part of test)
bench: $(BIN)/.installed-dev
	$(BIN)/python bench/artifacts.py
	$(BIN)/python bench/metadata.py

clean:
	rm -rf $(VENV) var

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test fuzz lint fmt migrate export-schema clean spec redoc

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls when pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## run: PostgreSQL and the four services on this machine; Ctrl-C stops everything.
run: install
	$(PY) bin/devstack run

## test: the whole suite (unit, API, end-to-end) against a throwaway PostgreSQL.
test: install
	$(PY) -m pytest

## fuzz: only the schemathesis stage (part of `make test`); a longer run:
## ETP_FUZZ_EXAMPLES=200 make fuzz (ETP_FUZZ_SEED=<n> for other requests).
fuzz: install
	$(PY) -m pytest tests/fuzz -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## migrate: apply pending migrations to the local PostgreSQL of `make run`.
migrate: install
	$(PY) bin/devstack migrate

## export-schema: regenerate tests/schemas/ after adding a migration.
export-schema: install
	$(PY) -m backend_common.migrations export-schema

clean:
	rm -rf .local

## spec: rebuild openapi/public.yaml (the API through the gateway) from the service specs.
spec: install
	$(PY) bin/build_public_spec

## redoc: re-fetch the pinned Redoc bundle behind the gateway's /docs from the npm registry
## (`npm pack`) and check it is the one recorded in services/gateway/gateway_service/docs/redoc.json.
redoc:
	bin/vendor_redoc

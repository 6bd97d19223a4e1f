PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM ?= npm
NODE_BIN := node_modules/.bin
NODE_STAMP := node_modules/.etp-installed
SDK_SPEC ?= openapi/public.yaml
SDK_BUILD := build/sdk
JOBS ?= $(shell nproc)

.PHONY: install run test fuzz lint fmt migrate export-schema clean spec redoc sdk sdk-build \
	sdk-smoke node-install check-asyncapi

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

## sdk: generate the TypeScript and C++ clients from openapi/public.yaml into the git-ignored
## clients/typescript and clients/cpp (openapi-typescript; openapi-generator's cpp-restsdk on Java 17).
sdk: install $(NODE_STAMP)
	rm -rf clients/typescript/src clients/typescript/dist
	cp -R openapi/clients/typescript/. clients/typescript/
	$(NODE_BIN)/openapi-typescript $(SDK_SPEC) --default-non-nullable false \
		--output clients/typescript/src/schema.ts
	$(PY) openapi/clients/cpp_client.py $(SDK_SPEC)

## sdk-build: compile both clients and their smoke programs (tsc, strict; cmake + g++).
sdk-build: $(NODE_STAMP)
	@test -f clients/typescript/src/schema.ts -a -f clients/cpp/CMakeLists.txt || \
		{ echo "no generated clients: run make sdk first"; exit 1; }
	$(NODE_BIN)/tsc --build openapi/clients/smoke/typescript
	cmake -S openapi/clients/smoke/cpp -B $(SDK_BUILD)/cpp-smoke > $(SDK_BUILD)/cmake.log \
		|| { cat $(SDK_BUILD)/cmake.log; exit 1; }
	cmake --build $(SDK_BUILD)/cpp-smoke --parallel $(JOBS) -- --no-print-directory

## sdk-smoke: both smoke programs against ETP_URL (default: make run's gateway, http://127.0.0.1:8000).
sdk-smoke: sdk-build
	node $(SDK_BUILD)/typescript-smoke/smoke.mjs
	$(SDK_BUILD)/cpp-smoke/etp-sdk-smoke

## check-asyncapi: validate openapi/asyncapi.yaml with the AsyncAPI parser.
check-asyncapi: $(NODE_STAMP)
	node bin/check-asyncapi.mjs openapi/asyncapi.yaml

## node-install: the npm workspaces (the TypeScript client, its smoke, the AsyncAPI parser).
node-install: $(NODE_STAMP)

# npm ci wants every workspace's package.json, the generated client's included.
$(NODE_STAMP): package.json package-lock.json openapi/clients/typescript/package.json \
		openapi/clients/smoke/typescript/package.json
	mkdir -p clients/typescript
	cp openapi/clients/typescript/package.json clients/typescript/
	$(NPM) ci --no-audit --no-fund
	touch $@

clean:
	rm -rf .local

## spec: rebuild openapi/public.yaml (the API through the gateway) from the service specs.
spec: install
	$(PY) bin/build_public_spec

## redoc: re-fetch the pinned Redoc bundle behind the gateway's /docs from the npm registry
## (`npm pack`) and check it is the one recorded in services/gateway/gateway_service/docs/redoc.json.
redoc:
	bin/vendor_redoc

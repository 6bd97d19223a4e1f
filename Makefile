PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM ?= npm
NODE_BIN := node_modules/.bin
NODE_STAMP := node_modules/.etp-installed
SDK_SPEC ?= openapi/public.yaml
SDK_BUILD := build/sdk
SDK_TS := clients/typescript/src/schema.ts
WEB_DIST := web/dist/index.html
WEB_SOURCES := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/package.json \
	web/tsconfig.json web/vite.config.ts
# make run builds the portal only where Node.js (20.19 or newer, as Vite wants) and npm are installed.
HAVE_NODE := $(shell node -e 'const [a, b] = process.versions.node.split(".").map(Number); \
	process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null && \
	command -v $(NPM) >/dev/null 2>&1 && echo yes)
JOBS ?= $(shell nproc)
# Test workers (pytest-xdist, one PostgreSQL each): tests wait on processes and the network as
# much as they compute, so one more than the cores.
TEST_JOBS ?= $(shell echo $$(( $$(nproc) + 1 )))

# The TimescaleDB pass of `make test` runs where the tests' PostgreSQL has the extension; this
# script (outside the repository, beside it) builds it from the vendored source, as root.
TIMESCALEDB_INSTALLER ?= ../shared/tools/install-timescaledb.sh
TIMESCALEDB_CONTROL := $(shell pg_config --sharedir 2>/dev/null)/extension/timescaledb.control
# Its tests: telemetry from ingest to every read (the migrations on that server among them), and
# the experiment service's tests that read or delete readings.
TIMESCALEDB_TESTS ?= tests/telemetry_ingest $(addprefix tests/experiment/,test_compare.py \
	test_compare_overlay.py test_project_deletion.py test_project_deletion_process.py \
	test_stale_runs.py test_sensor_status.py)
# $(call timed,label,command): runs the command and prints how long it took.
timed = started=$$(date +%s); $(2); status=$$?; \
	echo "== $(1): $$(( $$(date +%s) - started )) s (exit $$status)"; exit $$status

.PHONY: install run test test-timescaledb fuzz lint fmt migrate export-schema clean spec redoc sdk \
	sdk-ts sdk-build sdk-smoke node-install check-asyncapi web web-dev web-test

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls when pyproject.toml changes.
$(STAMP): pyproject.toml clients/python/pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]' -e 'clients/python[parquet,mlflow]'
	touch $(STAMP)

install: $(STAMP)

## run: PostgreSQL and the four services on this machine, the gateway serving the portal (built
## first when Node.js is installed); Ctrl-C stops everything.
run: install $(if $(HAVE_NODE),web)
	$(PY) bin/devstack run

## demo: a demo project on the running stack (make run; ETP_URL, default http://127.0.0.1:8000):
## people in every role (passwords shown once), runs, sensors, two recorded capture sessions, then
## three sensors streaming into a running capture until Ctrl-C. Each call makes a new project.
.PHONY: demo
demo: install
	$(VENV)/bin/etp --url "$${ETP_URL:-http://127.0.0.1:8000}" demo

## test: the portal's unit tests, then the whole suite (unit, API, end-to-end, the portal in
## Chromium) against throwaway PostgreSQL clusters, on TEST_JOBS workers (TEST_JOBS=0: all in
## one process); then the TimescaleDB pass where the extension is installed (else a SKIPPED line).
test: install web-test
	@$(call timed,main pass,$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile)
	@if [ -f "$(TIMESCALEDB_CONTROL)" ]; then \
		$(MAKE) --no-print-directory test-timescaledb; \
	elif [ -f "$(TIMESCALEDB_INSTALLER)" ]; then \
		echo "*** SKIPPED the TimescaleDB pass: the extension is not installed;" \
			"run $(TIMESCALEDB_INSTALLER) as root (.ci/run does) ***"; \
	else \
		echo "*** SKIPPED the TimescaleDB pass: the extension is not installed and" \
			"$(TIMESCALEDB_INSTALLER), which builds it, is missing ***"; \
	fi

## test-timescaledb: the migrations and the telemetry tests again, on a PostgreSQL that preloads
## TimescaleDB (a hypertable with compression and retention), with a test that both storages
## answer alike on the same readings.
test-timescaledb: install
	@test -f "$(TIMESCALEDB_CONTROL)" || \
		{ echo "TimescaleDB is not installed: run $(TIMESCALEDB_INSTALLER) as root"; exit 1; }
	@$(call timed,TimescaleDB pass,ETP_TIMESCALEDB=1 \
		$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile $(TIMESCALEDB_TESTS))

## fuzz: only the schemathesis stage (part of `make test`); a longer run:
## ETP_FUZZ_EXAMPLES=200 make fuzz (ETP_FUZZ_SEED=<n> for other requests).
fuzz: install
	$(PY) -m pytest tests/fuzz -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs services clients/python

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
sdk: install sdk-ts
	$(PY) openapi/clients/cpp_client.py $(SDK_SPEC)

## sdk-ts: only the TypeScript client (what the portal needs), regenerated when the spec changes.
sdk-ts: $(SDK_TS)

$(SDK_TS): $(SDK_SPEC) $(wildcard openapi/clients/typescript/*.json openapi/clients/typescript/src/*) \
		| $(NODE_STAMP)
	rm -rf clients/typescript/src clients/typescript/dist
	cp -R openapi/clients/typescript/. clients/typescript/
	$(NODE_BIN)/openapi-typescript $(SDK_SPEC) --default-non-nullable false --output $@

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

## node-install: the npm workspaces (the TypeScript client, its smoke, the portal, the AsyncAPI
## parser). Playwright drives Debian's chromium: it never downloads a browser of its own.
node-install: $(NODE_STAMP)

# npm ci wants every workspace's package.json, the generated client's included.
$(NODE_STAMP): package.json package-lock.json openapi/clients/typescript/package.json \
		openapi/clients/smoke/typescript/package.json web/package.json
	mkdir -p clients/typescript
	cp openapi/clients/typescript/package.json clients/typescript/
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(NPM) ci --no-audit --no-fund
	touch $@

## web: build the portal into web/dist (type check, then vite build); skipped when up to date.
web: $(WEB_DIST)

$(WEB_DIST): $(SDK_TS) $(WEB_SOURCES) | $(NODE_STAMP)
	$(NPM) run --silent build --workspace web

## web-dev: Vite's dev server (http://127.0.0.1:5173, hot reload) in front of a running gateway
## (ETP_GATEWAY, default make run's http://127.0.0.1:8000).
web-dev: $(SDK_TS) | $(NODE_STAMP)
	$(NODE_BIN)/tsc -b clients/typescript
	$(NPM) run dev --workspace web

## web-test: the portal's unit and component tests (vitest, jsdom); the browser suite runs in
## `make test` through tests/e2e/test_web.py.
web-test: $(SDK_TS) | $(NODE_STAMP)
	$(NODE_BIN)/tsc -b clients/typescript
	$(NPM) run --silent test --workspace web

clean:
	rm -rf .local web/dist

## spec: rebuild openapi/public.yaml (the API through the gateway) from the service specs.
spec: install
	$(PY) bin/build_public_spec

## redoc: re-fetch the pinned Redoc bundle behind the gateway's /docs from the npm registry
## (`npm pack`) and check it is the one recorded in services/gateway/gateway_service/docs/redoc.json.
redoc:
	bin/vendor_redoc

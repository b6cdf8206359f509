# wangge: one-command set-up. Every target installs what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup test lint demo up down status clean asyncapi ops-files deploy-check

help:
	@echo "make demo    run the whole loop on a sample city and print what happened"
	@echo "make test    set up and run the test suite (real Kafka and PostgreSQL)"
	@echo "make up      start Kafka, PostgreSQL and the three services in the background (.run/env)"
	@echo "             KAFKA_AUTH=scram: SASL/SCRAM and ACLs, one principal per service and system"
	@echo "make down    stop everything make up started"
	@echo "make lint    ruff + mypy + lint-imports (the layers)"
	@echo "make web     rebuild the pages' bundle (web/: ECharts, Leaflet from npm) and commit it"
	@echo "make web-check     fail when the committed bundle differs from a rebuild (CI)"
	@echo "make chaos   the crash suite at full size (20,000 reports, kills and restarts) and"
	@echo "             every network fault on every service's link (Toxiproxy)"
	@echo "make bench   the benchmark (bench/results/, docs/performance.md)"
	@echo "make ops-files     regenerate docs/asyncapi.yaml, the Strimzi KafkaTopics and KafkaUsers"
	@echo "make deploy-check  lint the Dockerfile, schema-check compose and the k8s manifests"
	@echo "make image-check   rebuild the image's venv without Docker and run it; resolve compose"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) $(WEB_DEPS)

# Toxiproxy for the network-fault suite (tests/chaos/test_network_faults.py), from the Go module
# proxy; skipped (the suite then says so) where Go is not installed.
TOXIPROXY := .cache/toxiproxy/server
TOXIPROXY_VERSION := v2.12.0
.PHONY: toxiproxy
toxiproxy: $(TOXIPROXY)
$(TOXIPROXY):
	@if command -v go >/dev/null; then \
		GOBIN=$(CURDIR)/.cache/toxiproxy go install \
			github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION); \
	else echo "Go not found: the network-fault suite will be skipped"; fi

# The Compose Specification's loader (compose-go), for tests/ops/test_compose.py: how compose
# resolves deploy/docker-compose.yml, without a container engine.
COMPOSE_CONFIG := .cache/go-bin/compose-config
.PHONY: compose-config
compose-config: $(COMPOSE_CONFIG)
$(COMPOSE_CONFIG): tools/compose-config/main.go tools/compose-config/go.mod
	@if command -v go >/dev/null; then \
		cd tools/compose-config && GOBIN=$(CURDIR)/.cache/go-bin go install .; \
	else echo "Go not found: the compose tests will be skipped"; fi

# The pages' JavaScript (web/: ECharts, Leaflet, esbuild, and axe-core for the browser tests),
# from npm. The bundle in services/dispatch/console/static/ is committed, so that the Python
# package and the image need no Node; make web rebuilds it, make web-check (CI) proves the
# committed files are what the sources and package-lock.json build.
WEB_DEPS := web/node_modules/.package-lock.json
$(WEB_DEPS): web/package.json web/package-lock.json
	@if command -v npm >/dev/null; then cd web && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the browser tests' accessibility check will be skipped"; fi

.PHONY: web web-check
web: $(WEB_DEPS)
	cd web && npm run --silent build

web-check: $(WEB_DEPS)
	cd web && npm run --silent check

test: $(STAMP) $(TOXIPROXY) $(COMPOSE_CONFIG) $(WEB_DEPS)
	$(BIN)/python -m pytest

# What the image, compose and the testcontainers path would do, checked without a container
# engine (part of make test too): docs/operations.md, "How each deployment path was verified".
.PHONY: image-check
image-check: $(STAMP) $(COMPOSE_CONFIG)
	$(BIN)/python -m pytest -q tests/ops/test_image.py tests/ops/test_compose.py \
		tests/stack/test_kafka_container.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

# The city keeps running until Ctrl-C, the board's address and sign-in links printed; make demo
# DEMO_ARGS=--exit stops at the end (CI, scripts).
demo: $(STAMP)
	$(BIN)/python -m devstack.demo $(DEMO_ARGS)

# The crash suite at full size (make test runs a reduced one): 20,000 reports, each service
# killed 5 times, Kafka restarted and PostgreSQL crashed once; the network faults (latency,
# resets, a 20 s partition) on each service's link to Kafka and to PostgreSQL: 18 faults
# (tests/chaos, docs/reliability.md).
.PHONY: chaos
chaos: $(STAMP) $(TOXIPROXY)
	WANGGE_CHAOS_REPORTS=$${WANGGE_CHAOS_REPORTS:-20000} WANGGE_CHAOS_KILLS=$${WANGGE_CHAOS_KILLS:-5} \
		WANGGE_FAULTS=$${WANGGE_FAULTS:-all} \
		WANGGE_TEST_TIMEOUT=$${WANGGE_TEST_TIMEOUT:-3600} $(BIN)/python -m pytest -q tests/chaos

# The benchmark (not part of make test): bench/results/<date>.json and .png (docs/performance.md).
# Options: make bench BENCH_ARGS="--backlog 20000 --latency-s 30" (python -m bench --help);
# the board's: BENCH_BOARD_ARGS (python -m bench.board --help).
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev,bench]'
	touch $@

# vegeta, the HTTP load generator of bench.http, from the Go module proxy.
VEGETA := .cache/go-bin/vegeta
VEGETA_VERSION := v12.13.0
.PHONY: vegeta
vegeta: $(VEGETA)
$(VEGETA):
	@if command -v go >/dev/null; then \
		GOBIN=$(CURDIR)/.cache/go-bin go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION); \
	else echo "Go not found: bench.http (Open311 POSTs over HTTP) will be skipped"; fi

.PHONY: bench
bench: $(BENCH_STAMP) $(VEGETA)
	$(BIN)/python -m bench $(BENCH_ARGS)
	@if [ -x $(VEGETA) ]; then \
		$(BIN)/python -m bench.http --out bench/results/$$(date -u +%F)http.json $(BENCH_HTTP_ARGS); \
	fi
	$(BIN)/python -m bench.board --out bench/results/$$(date -u +%F)board.json $(BENCH_BOARD_ARGS)

# make up KAFKA_AUTH=scram (or WANGGE_KAFKA_AUTH=scram make up): the local Kafka with SASL/SCRAM
# and ACLs, each service and upstream system its own principal (docs/operations.md, Kafka identity)
up: $(STAMP)
	$(if $(KAFKA_AUTH),WANGGE_KAFKA_AUTH=$(KAFKA_AUTH) )$(BIN)/python -m devstack up

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devstack down; fi

status: $(STAMP)
	$(BIN)/python -m devstack status

clean: down
	rm -rf .run .cache $(VENV)

# --- deploy artefacts (docs/operations.md) ------------------------------------------------------
DEPLOY_TOOLS := .cache/deploy-tools
GO_BIN := $(CURDIR)/.cache/go-bin
KUSTOMIZE_VERSION := v5.7.1

asyncapi ops-files: $(STAMP)
	$(BIN)/python scripts/generate_ops_files.py

$(DEPLOY_TOOLS)/.installed: deploy/tools-requirements.txt
	test -x $(DEPLOY_TOOLS)/bin/python || $(PY) -m venv $(DEPLOY_TOOLS)
	$(DEPLOY_TOOLS)/bin/python -m pip install -q -r deploy/tools-requirements.txt
	touch $@

$(GO_BIN)/kustomize:
	GOBIN=$(GO_BIN) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

# The AsyncAPI 3.0 JSON schema, from the npm package @asyncapi/specs.
ASYNCAPI_SPECS := .cache/asyncapi-specs
$(ASYNCAPI_SPECS)/.installed:
	mkdir -p $(ASYNCAPI_SPECS)
	cd $(ASYNCAPI_SPECS) && npm pack --silent @asyncapi/specs@6.11.1 >/dev/null \
		&& tar xzf asyncapi-specs-6.11.1.tgz
	touch $@

deploy-check: $(STAMP) $(DEPLOY_TOOLS)/.installed $(GO_BIN)/kustomize $(ASYNCAPI_SPECS)/.installed \
		$(COMPOSE_CONFIG)
	$(BIN)/python scripts/generate_ops_files.py --check
	$(DEPLOY_TOOLS)/bin/check-jsonschema \
		--schemafile '$(ASYNCAPI_SPECS)/package/schemas/3.0.0-without-$$id.json' docs/asyncapi.yaml
	$(DEPLOY_TOOLS)/bin/hadolint deploy/Dockerfile
	$(DEPLOY_TOOLS)/bin/check-jsonschema --builtin-schema vendor.compose-spec deploy/docker-compose.yml
	$(DEPLOY_TOOLS)/bin/python scripts/validate_k8s.py --kustomize $(GO_BIN)/kustomize \
		deploy/k8s/base deploy/k8s/topics deploy/k8s/users deploy/k8s/minio \
		deploy/k8s/overlays/example deploy/k8s/overlays/single-namespace

# wangge: one-command set-up. Every target installs what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup test test-all lint demo up down status clean asyncapi

help:
	@echo "make demo    run the whole loop on a sample city and print what happened"
	@echo "make test    set up and run the test suite (real Kafka and PostgreSQL)"
	@echo "make up      start Kafka, PostgreSQL and the three services in the background (.run/env)"
	@echo "make down    stop everything make up started"
	@echo "make lint    ruff + mypy"

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

test-all: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

demo: $(STAMP)
	$(BIN)/python -m devstack.demo

up: $(STAMP)
	$(BIN)/python -m devstack up

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devstack down; fi

status: $(STAMP)
	$(BIN)/python -m devstack status

clean: down
	rm -rf .run .cache $(VENV)

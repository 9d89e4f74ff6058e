# rollcall's two commands: `make run` and `make test`. Both set everything up first and are
# quick the second time (stamp files in .venv record what is installed).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The pair that lies on the development machines' disk (a CUDA build that also runs on the CPU);
# pyproject.toml keeps loose ranges so other machines can pick their own build.
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1

.PHONY: setup weights run test test-fast lint clean-venv deploy-check

$(VENV)/.torch-installed:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PAIR)
	touch $@

$(VENV)/.project-installed: pyproject.toml $(VENV)/.torch-installed
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

weights: $(VENV)/.project-installed
	$(PY) -m ml.weights fetch

setup: weights
	scripts/ensure_redis.sh

run: setup
	scripts/run.sh

test: setup lint
	scripts/ensure_postgres.sh
	scripts/ensure_chromium.sh
	scripts/ensure_rabbitmq.sh
	scripts/ensure_camera_servers.sh
	scripts/ensure_mqtt_broker.sh
	$(VENV)/bin/pytest

test-fast: setup
	$(VENV)/bin/pytest -m "not integration"

lint: $(VENV)/.project-installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy ml facebank evaluation recognition contract tasks live

# Builds the images and runs the compose deployment for real (docker/README.md); minutes and ~7 GB of
# disk, so not part of `make test`. Needs a Docker engine; exits non-zero when any job is lost.
deploy-check: $(VENV)/.project-installed
	$(PY) scripts/deploy_check.py

clean-venv:
	rm -rf $(VENV)

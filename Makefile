# Arbiter developer commands. Every target that needs Python first creates
# (or refreshes) the project's own virtualenv in .venv, so a fresh clone needs
# nothing but python3 >= 3.11.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Two stamps: the runtime install (what `make run` needs) and the dev tools on top
# (what test, check, proto, bench need), so a first `make run` installs no dev tools.
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DIST_STAMP := $(VENV)/.installed-distributed
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat
DB ?= arbiter.db
ADDRESS ?= 127.0.0.1:50051

.PHONY: venv dev-venv run run-distributed test check proto proto-check lint typecheck fmt bench soak services services-stop clean

venv: $(STAMP)

dev-venv: $(DEV_STAMP)

# compat editable mode puts client/ and server/ on sys.path, so the two halves
# of the `arbiter` namespace package resolve like any other namespace package.
$(STAMP): pyproject.toml client/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ./client -e .
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP_INSTALL) -e ./client -e '.[dev]'
	touch $(DEV_STAMP)

# The distributed backend's driver on top of the runtime install (the dev tools include it).
$(DIST_STAMP): $(STAMP)
	$(PIP_INSTALL) -e ./client -e '.[distributed]'
	touch $(DIST_STAMP)

run: venv
	$(PY) -m arbiter.server --address $(ADDRESS) --db $(DB) --demo

# The demo on the distributed backend: Postgres (and Redis) from `make services`, left running after.
run-distributed: $(DIST_STAMP) services
	. .services/services.env && $(PY) -m arbiter.server --address $(ADDRESS) --db "$$ARBITER_DB" --redis "$$ARBITER_REDIS" --demo

# The whole suite on each backend: SQLite, then a throwaway Postgres the tests start themselves.
test: check
	$(PY) -m pytest
	ARBITER_TEST_BACKEND=postgres $(PY) -m pytest

check: proto-check lint typecheck

proto: dev-venv
	$(PY) scripts/gen_protos.py

proto-check: dev-venv
	$(PY) scripts/gen_protos.py --check

lint: dev-venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: dev-venv
	$(PY) -m mypy

fmt: dev-venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: dev-venv
	$(PY) bench/run.py

soak: dev-venv
	$(PY) bench/soak.py

# Real PostgreSQL and Redis on loopback for development, detached, in .services/ (installed with apt-get
# when missing); prints ARBITER_DB=... and ARBITER_REDIS=... (also in .services/services.env).
services: venv
	$(PY) scripts/local_services.py start

services-stop: venv
	$(PY) scripts/local_services.py stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info client/*.egg-info server/*.egg-info

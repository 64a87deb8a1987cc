# Arbiter developer commands. Every target that needs Python first creates
# (or refreshes) the project's own virtualenv in .venv, so a fresh clone needs
# nothing but python3 >= 3.11.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DB ?= arbiter.db
ADDRESS ?= 127.0.0.1:50051

.PHONY: venv run test check proto proto-check lint typecheck fmt bench soak clean

venv: $(STAMP)

# compat editable mode puts client/ and server/ on sys.path, so the two halves
# of the `arbiter` namespace package resolve like any other namespace package.
$(STAMP): pyproject.toml client/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check \
		--config-settings editable_mode=compat -e ./client -e '.[dev]'
	touch $(STAMP)

run: venv
	$(PY) -m arbiter.server --address $(ADDRESS) --db $(DB) --demo

test: check
	$(PY) -m pytest

check: proto-check lint typecheck

proto: venv
	$(PY) scripts/gen_protos.py

proto-check: venv
	$(PY) scripts/gen_protos.py --check

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: venv
	$(PY) -m mypy

fmt: venv
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

bench: venv
	$(PY) bench/run.py

soak: venv
	$(PY) bench/soak.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info client/*.egg-info server/*.egg-info

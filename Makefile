# Two commands set up and run everything on a fresh machine (README.md):
#   make run    the main job: the monthly refresh over a synthetic population
#   make test   the test suite (what CI runs, through .ci/run)
# Both install the locked environment first: uv (pinned, from PyPI) syncs .venv from uv.lock.

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
SYNCED := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml | sha256sum | cut -c1-16)

PERSONS ?= 20000
OUT ?= data/synthetic

export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: run test lint setup clean

setup: $(SYNCED)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	rm -f $(VENV)/.synced-*
	touch $@

run: $(SYNCED)
	$(VENV)/bin/outcomes synth --out $(OUT) --persons $(PERSONS) --overwrite

test: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n 2 --dist loadfile

lint: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(TOOLS) data warehouse

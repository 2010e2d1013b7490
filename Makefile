# Two commands set up and run everything on a fresh machine (README.md):
#   make run    the main job: the refresh DAG over a synthetic population, ending in outcome tables and a report
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

# The demo rebuilds its warehouse from scratch: a new synthetic population is a new history.
run: $(SYNCED)
	rm -rf warehouse airflow_home airflow_home.log
	$(VENV)/bin/outcomes synth --out $(OUT) --persons $(PERSONS) --overwrite
	@echo "Running the outcomes_refresh DAG (Airflow on SQLite; log in airflow_home.log)"
	@AIRFLOW_HOME=$(CURDIR)/airflow_home $(VENV)/bin/python -m outcomes.pipeline.run_dag --landing $(OUT)/landing --truth $(OUT)/truth \
		> airflow_home.log 2>&1 || (tail -30 airflow_home.log; exit 1)
	@cat warehouse/reports/last_dag_run.json
	@echo "Running the outcomes_data_docs DAG (after each publication: dbt and great-expectations data docs)"
	@AIRFLOW_HOME=$(CURDIR)/airflow_home $(VENV)/bin/python -m outcomes.pipeline.run_dag --dag outcomes_data_docs --landing $(OUT)/landing \
		>> airflow_home.log 2>&1 || (tail -30 airflow_home.log; exit 1)
	$(VENV)/bin/outcomes query "select source, count(*) as deliveries, sum(rows_applied) as rows_applied, sum(rows_quarantined) as rows_quarantined from events.deliveries where status = 'applied' group by source order by source"
	$(VENV)/bin/outcomes query "select source_a, source_b, round(match_rate, 3) as match_rate, round(pairwise_precision, 4) as precision, round(pairwise_recall, 4) as recall, review_pairs from marts.linkage_quality where breakdown = 'all' order by source_a, source_b"
	$(VENV)/bin/outcomes query "select period_label as financial_year, substance_group, in_treatment, successful_completions, not_representing, round(rate, 3) as rate, provisional from published.successful_completion where la_code = 'E92000001' and period_type = 'financial_year' order by 1, 2"
	@echo "Outcome tables: warehouse/outcomes.duckdb (schemas marts, research, published; e.g. .venv/bin/outcomes query \"select * from published.successful_completion limit 5\")"
	@echo "Outcomes report: $$(ls -t warehouse/reports/outcomes_report_*.html | head -1)"
	@echo "Data docs (linked from the report): warehouse/reports/data-docs/dbt/index.html, warehouse/reports/data-docs/great-expectations/index.html"
	@echo "Docs: README.md, docs/ (operations: docs/operations.md)"

test: $(SYNCED)
	.ci/install-chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n 2 --dist loadfile

lint: $(SYNCED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(TOOLS) data warehouse airflow_home airflow_home.log

#!/usr/bin/env bash
# First start of the server's PostgreSQL: a database and owner for the warehouse and for Airflow.
# The access-tier roles (outcomes_researcher, ...) are created by `outcomes build`.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" <<SQL
create role outcomes login password '${OUTCOMES_DB_PASSWORD}' createrole;
create database outcomes owner outcomes;
create role airflow login password '${AIRFLOW_DB_PASSWORD}';
create database airflow owner airflow;
SQL

# The project's image for the server deployment (docker-compose.yml): the locked environment from
# uv.lock, with the Celery executor extra. Nothing is fetched at run time.
FROM python:3.11-slim

ENV UV_VERSION=0.13.8 \
    UV_PROJECT_ENVIRONMENT=/opt/outcomes/.venv \
    PATH=/opt/outcomes/.venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/outcomes/dags

RUN pip install --no-cache-dir uv==${UV_VERSION}
WORKDIR /opt/outcomes
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra server --no-install-project
COPY . .
RUN uv sync --frozen --no-dev --extra server

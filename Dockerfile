# One image for every driftloop service: Airflow's components, the MLflow server and the
# prediction server (compose runs each with its own command). Non-root. Every folder a
# named volume mounts is made here and owned by the user: Docker gives a new volume the
# ownership of the image's folder (else root, and the user could not write).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    DRIFTLOOP_CONFIG=/opt/driftloop/driftloop.yaml

RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libpq5 libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/driftloop
COPY requirements.txt ./
RUN pip install --no-cache-dir uv==0.13.9 \
    && uv pip sync --system requirements.txt
# The project: dags/ and plugins/ (Airflow's AIRFLOW__CORE__DAGS_FOLDER and PLUGINS_FOLDER point
# here), include/ installed as the driftloop package, the configs.
COPY . .
RUN test -f plugins/driftloop_plugin.py && test -f plugins/.airflowignore \
    && uv pip install --system --no-deps . \
    && useradd --uid 50000 --create-home --home-dir /home/driftloop driftloop \
    && mkdir -p /opt/airflow/logs /opt/airflow/auth /var/lib/driftloop /mlartifacts \
    && chown -R driftloop /opt/airflow /var/lib/driftloop /mlartifacts /opt/driftloop

USER driftloop
EXPOSE 8000 8080 5000
CMD ["gunicorn", "-c", "serving/gunicorn.conf.py", "serving.app:create_app()"]

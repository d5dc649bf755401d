# syntax=docker/dockerfile:1
# The ladderback service. Build: `docker build -t ladderback .`
# Run:   `docker run -p 8000:8000 -v ladderback-data:/srv/data ladderback` (SQLite in the volume)
# or with `-e DATABASE_URL=postgresql://user:password@host/db -e LADDERBACK_WORKERS=2`.
# Start-up migrates the database, then serves; see README, "Running in production".
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Stage 1: the runtime dependencies, in a virtualenv that is copied whole into the image.
FROM ${PYTHON_IMAGE} AS dependencies
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY pyproject.toml ./
# pyproject.toml's [project] dependencies only; the code is copied as source below.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# Stage 2: the service, run by an unprivileged user; no compiler, no pip cache.
FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN useradd --system --uid 10001 --user-group --home-dir /srv --no-create-home ladderback \
    && mkdir -p /srv/data \
    && chown ladderback:ladderback /srv/data
COPY --from=dependencies /opt/venv /opt/venv
WORKDIR /srv
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
# Bytecode compiled once here: the image is read-only to its user, and compiling at each
# start would add to every worker's cold start.
RUN python -m compileall -q app migrations
USER 10001:10001
ENV DATABASE_URL=sqlite:////srv/data/ladderback.db \
    LADDERBACK_HOST=0.0.0.0 \
    LADDERBACK_PORT=8000 \
    LADDERBACK_WORKERS=1
EXPOSE 8000
# Liveness only (GET /healthz): a database outage must not get live containers replaced.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "app.healthcheck"]
# Migrate (instances take turns), then serve with LADDERBACK_WORKERS processes.
CMD ["python", "-m", "app.cli", "serve"]

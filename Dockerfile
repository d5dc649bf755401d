# syntax=docker/dockerfile:1
# Minimal image; the production shape (multi-stage, healthcheck) comes later.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /srv
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 ladderback \
    && mkdir -p /srv/data && chown ladderback /srv/data
USER ladderback
ENV DATABASE_URL=sqlite:////srv/data/ladderback.db
EXPOSE 8000
# Migrate, then serve. `python -m` runs the code in /srv, next to alembic.ini and migrations/.
CMD ["sh", "-c", "python -m app.cli db upgrade && exec uvicorn app.main:app --host 0.0.0.0 --port 8000"]

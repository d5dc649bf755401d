"""Service settings, read from the environment once at start-up.

Most settings take the prefix ``LADDERBACK_``; the database is ``DATABASE_URL`` (the
convention every host and container platform uses), or ``LADDERBACK_DATABASE_URL``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

# Hard ceiling on history length in the public contract; the setting may only lower it.
HISTORY_SESSIONS_CEILING = 200


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LADDERBACK_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///ladderback.db",
        validation_alias=AliasChoices("DATABASE_URL", "LADDERBACK_DATABASE_URL"),
        description="SQLAlchemy URL; a SQLite file by default, PostgreSQL for several instances.",
    )
    catalog_dir: Path | None = Field(
        default=None, description="Directory of catalog data files; the packaged catalog if unset."
    )
    max_body_bytes: int = Field(
        default=256_000, ge=1_024, le=10_000_000, description="Largest accepted request body."
    )
    max_history_sessions: int = Field(
        default=HISTORY_SESSIONS_CEILING,
        ge=1,
        le=HISTORY_SESSIONS_CEILING,
        description="Most sessions accepted in a recommendation request's history.",
    )
    max_sessions_per_day: int = Field(
        default=12, ge=1, le=24, description="Most sessions one user may log for one date."
    )
    idempotency_hours: int = Field(
        default=24, ge=1, le=24 * 7, description="How long an Idempotency-Key is remembered."
    )
    db_lock_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="How long a write waits for a lock before a 503."
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=1, le=1_000_000, description="Requests one client may make a minute."
    )
    key_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        le=300,
        description="How long a checked API key is trusted without a database read; a "
        "revoked key keeps working this long. 0 checks every request.",
    )
    redis_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("REDIS_URL", "LADDERBACK_REDIS_URL"),
        description="Share the rate-limit budget between instances through this Redis.",
    )
    log_level: str = Field(
        default="INFO",
        pattern="^(DEBUG|INFO|WARNING|ERROR)$",
        description="Least severity logged (JSON lines on stdout); INFO logs one line a request.",
    )
    host: str = Field(default="127.0.0.1", description="Address `ladderback serve` listens on.")
    port: int = Field(
        default=8000,
        ge=1,
        le=65_535,
        validation_alias=AliasChoices("LADDERBACK_PORT", "PORT"),
        description="Port `ladderback serve` listens on.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        validation_alias=AliasChoices("LADDERBACK_WORKERS", "WEB_CONCURRENCY"),
        description="Worker processes of `ladderback serve`; each takes about one core.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies (comma-separated addresses, or `*`) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed: set it to the load balancer's address.",
    )
    migrate_on_start: bool = Field(
        default=True,
        description="`ladderback serve` migrates the database before serving; instances "
        "starting together take turns.",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*)?$",
        description="The service's external base URL (scheme, host, any path prefix). CDS "
        "Hooks tokens must name the endpoint under it in `aud`; unset, CDS calls get 503.",
    )
    cds_token_max_seconds: int = Field(
        default=3600,
        ge=60,
        le=24 * 3600,
        description="Longest lifetime (exp - iat) accepted for a CDS Hooks token; each token "
        "id is remembered this long to refuse replays.",
    )
    cds_clock_skew_seconds: int = Field(
        default=60, ge=0, le=600, description="Clock difference tolerated on token times."
    )
    cds_jwks_cache_seconds: int = Field(
        default=300, ge=0, le=86_400, description="How long a fetched JWK Set is reused."
    )
    cds_jwks_refetch_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Least time between fetches of a JWK Set forced by an unknown `kid`.",
    )
    fhir_exports_per_client: int = Field(
        default=1,
        ge=1,
        le=64,
        description="FHIR export pages one client may have in progress at once on one "
        "worker; more get 429 at once. Keeps one client's exports from starving the others.",
    )
    fhir_export_processes: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Processes each worker builds FHIR export pages in (started on the "
        "first export), so their CPU work never stalls the worker's other requests.",
    )

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, url: str | None) -> str | None:
        return None if url is None else url.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        # Plain postgres URLs (as most platforms hand them out) use the psycopg 3 driver.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix) :]
        if not url.startswith(("sqlite:///", "postgresql+psycopg://")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Service settings, read from the environment once at start-up.

Most settings take the prefix ``LADDERBACK_``; the database is ``DATABASE_URL`` (the
convention every host and container platform uses), or ``LADDERBACK_DATABASE_URL``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
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
    forwarded_allow_ips: str | None = Field(
        default=None,
        description="Proxies (comma-separated IP addresses or networks) whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; none by default. A listed "
        "proxy must append the address it saw: the client is the last address in "
        "X-Forwarded-For that is not a listed proxy.",
    )
    max_request_target_bytes: int = Field(
        default=8_192,
        ge=1_024,
        le=65_536,
        description="Longest request target (path and query) accepted; 414 beyond.",
    )
    max_header_line_bytes: int = Field(
        default=16_384,
        ge=1_024,
        le=65_536,
        description="Longest header (name and value) accepted; 431 beyond.",
    )
    max_header_bytes: int = Field(
        default=65_536,
        ge=4_096,
        le=1_048_576,
        description="Most bytes of request line and headers together; 431 beyond.",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Time from a request's first byte to the end of its headers; 408 beyond.",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Time from the end of the headers to the end of the body; 408 beyond.",
    )
    keep_alive_seconds: int = Field(
        default=5,
        ge=1,
        le=300,
        description="How long a connection may wait idle for its next request (or its "
        "first) before it is closed.",
    )
    max_connections: int = Field(
        default=1_000,
        ge=8,
        le=100_000,
        description="Open connections one worker keeps; beyond, the longest-waiting idle or "
        "slow one is closed, or the new one gets 503. Lowered to fit the open-file limit.",
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

    @model_validator(mode="after")
    def _line_within_head(self) -> Settings:
        if self.max_header_line_bytes > self.max_header_bytes:
            raise ValueError("max_header_line_bytes must not exceed max_header_bytes")
        return self

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_by_address(cls, value: str | None) -> str | None:
        # uvicorn would take `*` to mean "believe any client's X-Forwarded-For" (and use its
        # first, client-written address), and a mistyped address as a literal that never
        # matches: both are refused here, so the failed-key budget's address is unforgeable.
        entries = [e.strip() for e in (value or "").split(",") if e.strip()]
        for entry in entries:
            if entry == "*":
                raise ValueError(
                    "`*` would let any client choose the address it is counted by: list "
                    "the proxies' addresses or networks (10.0.0.0/8, say)"
                )
            try:
                # Strict, as uvicorn reads them: 10.0.0.1/8 would match nothing there.
                ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (a network's host bits "
                    "are zero: 10.0.0.0/8)"
                ) from None
        return ",".join(entries) or None

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

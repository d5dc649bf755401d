"""Service settings, read from the environment (prefix ``LADDERBACK_``) once at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]

# Hard ceiling on history length in the public contract; the setting may only lower it.
HISTORY_SESSIONS_CEILING = 200


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LADDERBACK_", extra="ignore")

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
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Request dependencies as ``Annotated`` aliases; tests override the underlying functions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Depends, Request

from app.domain.catalog import Catalog
from app.settings import Settings, get_settings

__all__ = ["CatalogDep", "SettingsDep", "TodayDep", "get_catalog", "get_today"]


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def get_today() -> date:
    """The service's idea of today (UTC); the domain never reads a clock itself."""
    return datetime.now(UTC).date()


CatalogDep = Annotated[Catalog, Depends(get_catalog)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TodayDep = Annotated[date, Depends(get_today)]

from __future__ import annotations

import pytest

from app.catalog.loader import default_catalog
from app.domain.catalog import Catalog


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return default_catalog()

"""Shared by the example suites: the relational schema that ``sql_db`` creates once per
backend (pytest-commons takes one ``sql_schema`` per run, so it lives at the root)."""

import pytest
from sqlalchemy import MetaData

from commons_rdbms import Base


@pytest.fixture(scope="session")
def sql_schema() -> MetaData:
    return Base.metadata

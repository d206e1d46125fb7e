"""The app under uvicorn (once per run), wired per test to this test's services.

- database: the test's own fresh database (``postgres``); inside it, one connection on the
  server's loop holds a transaction that every request's session joins (SAVEPOINTs), so
  ``app_db.reset()`` gives a schemathesis case a clean slate of its own;
- Redis: the worker's database (``redis_url``, emptied per test);
- Kafka: a topic of the test's own; S3: a bucket of the test's own; the partner API: MockServer.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from commons_fastapi import Base, Services, app, get_services, get_session
from commons_fastapi.testing import AppDatabase
from pytest_commons import Aws, Kafka, PostgresDatabase
from pytest_commons.live import LiveServer, live_server
from pytest_commons.live.fastapi import override
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

app_server = live_server(app, scope="session")


@pytest.fixture(scope="session")
def postgres_schema() -> str:
    """The app's tables, created once into the template every test database is cloned from."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return ";\n".join(
        str(CreateTable(table).compile(dialect=dialect)) for table in Base.metadata.sorted_tables
    )


@pytest.fixture
def app_db(app_server: LiveServer, postgres: PostgresDatabase) -> Iterator[AppDatabase]:
    url = postgres.url.replace("postgresql://", "postgresql+psycopg://", 1)
    db = AppDatabase(app_server, url)
    yield db
    db.close()


@pytest.fixture
def services(kafka: Kafka, aws: Aws, redis_url: str, mockserver_url: str) -> Services:
    return Services(
        redis_url=redis_url,
        producer=kafka.producer(),  # closed after the test
        topic=kafka.topic("item-events"),
        s3=aws.client("s3"),
        bucket=aws.bucket("images"),
        partner_url=mockserver_url,
    )


@pytest.fixture
def api(app_server: LiveServer, app_db: AppDatabase, services: Services) -> Iterator[httpx.Client]:
    """An httpx client on the live app, whose dependencies are this test's services."""
    overrides: dict[Any, Any] = {get_session: app_db.session, get_services: lambda: services}
    with override(app, overrides), app_server.client(timeout=10) as client:
        yield client

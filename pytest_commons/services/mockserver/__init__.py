"""MockServer: the ``mockserver`` fixture (a mockserver-client, reset per test).

Modules: ``spec`` (the server: the real MockServer or pytest-commons' engine), ``engine`` (the
engine), ``fixtures``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_commons.core.config import Option, ServiceConfig, ServiceMeta

__all__ = ["META", "MockServerConfig"]


@dataclass(frozen=True)
class MockServerConfig(ServiceConfig):
    """MockServer's resolved options (frozen; one field per option of ``META.options``)."""

    #: the local engine: auto, java, commons (``mockserver_engine``)
    engine: str = "auto"


META = ServiceMeta(
    name="mockserver",
    title="MockServer",
    spec="MockServerSpec",
    report="report:describe",
    url_help="URL (http://host:port)",
    default_image="mockserver/mockserver:5.15.0",
    config=MockServerConfig,
    options=(
        Option(
            "mockserver_engine",
            "Engine of the local MockServer backend: auto (default: the real MockServer when "
            "Java 8+ and its jar are here, see `pytest-commons fetch mockserver`; else "
            "pytest-commons' own engine), java, commons.",
            default="auto",
            choices=("auto", "java", "commons"),
        ),
    ),
)

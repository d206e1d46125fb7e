"""Backends: how a service instance comes to exist (``local``, ``docker``, ``external``)."""

from __future__ import annotations

from pytest_commons.backends.base import Backend, get_backend
from pytest_commons.core.config import RunConfig
from pytest_commons.plugin.settings import Settings

__all__ = ["Backend", "RunConfig", "Settings", "get_backend"]

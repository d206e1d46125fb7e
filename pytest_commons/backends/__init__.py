"""Backends: how a service instance comes to exist (``local``, ``docker``, ``external``)."""

from __future__ import annotations

from pytest_commons._settings import Settings
from pytest_commons.backends.base import Backend, get_backend

__all__ = ["Backend", "Settings", "get_backend"]

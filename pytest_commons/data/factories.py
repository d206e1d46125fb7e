"""Factories bound to the current test: ``register_factory`` / ``factory_fixture``.

Works with factory-boy (``factory.Factory``, ``factory.alchemy.SQLAlchemyModelFactory``) and
polyfactory (``SQLAlchemyFactory``, ``ModelFactory`` for pydantic, ``DataclassFactory``, …).
During the test the factory uses the test's seeded ``faker`` and seed and, for SQLAlchemy
factories, the test's session: ``sql_db.session`` (``sql_db.async_session`` for polyfactory's
async creation) when the test uses ``sql_db``, else the ``commons_db_session`` fixture. Everything
is restored after the test. Neither library is imported here until a factory is bound.
"""

from __future__ import annotations

import inspect
import random
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=type)

_MISSING = object()


def fixture_name(factory_cls: type) -> str:
    """``UserFactory`` → ``user_factory``; ``HTTPRequestFactory`` → ``http_request_factory``."""
    name = factory_cls.__name__
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
    return snake if snake.endswith("_factory") else f"{snake}_factory"


def _mro_modules(cls: type) -> list[str]:
    return [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]


def library_of(factory_cls: type) -> str:
    """``"factory_boy"`` or ``"polyfactory"``."""
    mods = _mro_modules(factory_cls)
    if any(m.startswith("polyfactory.") for m in mods):
        return "polyfactory"
    if any(m.startswith("factory.") for m in mods):
        return "factory_boy"
    raise TypeError(
        f"pytest-commons: {factory_cls.__qualname__} is neither a factory-boy nor a polyfactory "
        "factory"
    )


def needs_session(factory_cls: type) -> bool:
    mods = _mro_modules(factory_cls)
    return any(
        m
        in (
            "factory.alchemy.SQLAlchemyModelFactory",
            "polyfactory.factories.sqlalchemy_factory.SQLAlchemyFactory",
        )
        for m in mods
    )


def _sessions(request: pytest.FixtureRequest, want_async: bool) -> tuple[Any, Any]:
    if "sql_db" in request.fixturenames:
        db = request.getfixturevalue("sql_db")
        async_session = None
        if want_async:
            try:
                async_session = db.async_session
            except RuntimeError:  # a sync test: sql_db has no async session to give
                async_session = None
        return db.session, async_session
    return request.getfixturevalue("commons_db_session"), None


class _Patch:
    """Set attributes on classes/objects and put the old values back."""

    def __init__(self) -> None:
        self.saved: list[tuple[Any, str, Any]] = []

    def set(self, obj: Any, name: str, value: Any) -> None:
        self.saved.append((obj, name, obj.__dict__.get(name, _MISSING)))
        setattr(obj, name, value)

    def undo(self) -> None:
        for obj, name, old in reversed(self.saved):
            if old is _MISSING:
                delattr(obj, name)
            else:
                setattr(obj, name, old)
        self.saved.clear()


def _factory_boy_tree(factory_cls: Any, seen: set[Any]) -> Iterator[Any]:
    """The factory and every factory reachable through SubFactory/RelatedFactory."""
    if factory_cls in seen:
        return
    seen.add(factory_cls)
    yield factory_cls
    for decl in getattr(factory_cls._meta, "declarations", {}).values():
        get = getattr(decl, "get_factory", None)
        if get is None:
            wrapped = getattr(decl, "factory_wrapper", None)
            get = getattr(wrapped, "get", None)
        if get is not None:
            try:
                sub = get()
            except Exception:  # lazy import paths that fail surface in the factory itself
                continue
            yield from _factory_boy_tree(sub, seen)


def bind(factory_cls: Any, request: pytest.FixtureRequest, patch: _Patch) -> Any:
    """Bind ``factory_cls`` to the test's faker, seed and session (undone by ``patch.undo()``)."""
    fake = request.getfixturevalue("faker")
    seed = int(request.getfixturevalue("commons_test_seed"))
    session = async_session = None
    if needs_session(factory_cls):
        session, async_session = _sessions(request, library_of(factory_cls) != "factory_boy")
    if library_of(factory_cls) == "factory_boy":
        import factory.random

        factory.random.reseed_random(seed)  # type: ignore[no-untyped-call]
        for cls in _factory_boy_tree(factory_cls, set()):
            meta = cls._meta
            if needs_session(cls) and session is not None:
                patch.set(meta, "sqlalchemy_session", session)
                patch.set(meta, "sqlalchemy_session_factory", None)
    else:
        patch.set(factory_cls, "__faker__", fake)
        patch.set(factory_cls, "__random__", random.Random(seed))
        if session is not None:
            patch.set(factory_cls, "__session__", session)
        if async_session is not None:
            patch.set(factory_cls, "__async_session__", async_session)
    return factory_cls


def factory_fixture(factory_cls: F, name: str | None = None) -> Callable[..., Any]:
    """A pytest fixture giving ``factory_cls`` bound to the test (see the module docstring).

    ``user_factory = factory_fixture(UserFactory)`` in a conftest or test module; the fixture
    returns the factory class itself, so ``user_factory()``, ``user_factory.create_batch(3)``
    (factory-boy) or ``user_factory.build()`` / ``.create_sync()`` (polyfactory) work.
    Scope: function.
    """
    fixture_id = name or fixture_name(factory_cls)

    def _fixture(request: pytest.FixtureRequest) -> Iterator[F]:
        patch = _Patch()
        try:
            yield bind(factory_cls, request, patch)
        finally:
            patch.undo()

    _fixture.__name__ = fixture_id
    _fixture.__doc__ = (
        f"{factory_cls.__qualname__}, bound to this test's seeded faker"
        + (" and database session" if needs_session(factory_cls) else "")
        + ". Scope: function."
    )
    return pytest.fixture(name=fixture_id)(_fixture)


def register_factory(factory_cls: F, name: str | None = None) -> F:
    """Define fixture ``user_factory`` (from ``UserFactory``) in the calling module.

    Call it at module level of a conftest.py or test module (or use it as a class decorator);
    returns the factory class unchanged.
    """
    frame = inspect.currentframe()
    caller = frame.f_back if frame is not None else None
    if caller is None:  # pragma: no cover - CPython always has frames
        raise RuntimeError("register_factory must be called from a module")
    fixture = factory_fixture(factory_cls, name)
    caller.f_globals[name or fixture_name(factory_cls)] = fixture
    return factory_cls

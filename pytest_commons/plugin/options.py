"""The ``commons`` option group: every option has a command-line flag, an ini key and an
environment variable.

Precedence, highest first: command line, environment, ini file, default. This module imports
nothing heavy: it is loaded with the plugin.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from pytest_commons.core.config import Option as Option  # re-exported: plugin modules add theirs
from pytest_commons.services import SERVICES

BACKEND_CHOICES = ("auto", "local", "docker", "external")
DEFAULT_BACKEND_ORDER = "external,docker,local"


def _service_options() -> Iterable[Option]:
    for meta in SERVICES.values():
        name = meta.name
        yield Option(
            f"{name}_backend",
            f"Backend for {meta.title}: auto (default), {', '.join(meta.backends)}.",
            default="auto",
            choices=("auto", *meta.backends),
        )
        if "external" in meta.backends:
            yield Option(
                f"{name}_{meta.url_key}",
                f"{meta.url_help} of an existing {meta.title} for the external backend "
                "(the plugin creates and drops only what it named itself).",
            )
        if "docker" in meta.backends:
            yield Option(
                f"{name}_image",
                f"Docker image for {meta.title} (default {meta.default_image}).",
                default=meta.default_image,
            )
        yield from meta.options


GLOBAL_OPTIONS: tuple[Option, ...] = (
    Option(
        "backend_order",
        "Order in which backend 'auto' tries backends (comma separated; default "
        f"{DEFAULT_BACKEND_ORDER}).",
        default=DEFAULT_BACKEND_ORDER,
    ),
    Option(
        "services_missing",
        "What a test that needs an unavailable service does: skip, or fail (the default when "
        "$CI is set).",
        choices=("skip", "fail"),
    ),
    Option(
        "service_start_timeout",
        "Seconds a service may take to become ready before the run fails with its log "
        "(default 60).",
        default="60",
        kind="seconds",
    ),
    Option(
        "commons_cache_dir",
        "Directory for caches kept across runs (initialised database clusters). Default "
        "$XDG_CACHE_HOME/pytest-commons or ~/.cache/pytest-commons.",
    ),
    Option(
        "db_backends",
        "Comma separated relational backends that @pytest.mark.backends tests run on "
        "(narrows the marker's list; default: all of them).",
    ),
    Option(
        "commons_seed",
        "Seed for the faker fixture and the data tools (default: random, printed in the "
        "header and in failure reports).",
    ),
    Option(
        "faker_locale",
        "Locale of the faker fixture (default en_US).",
        default="en_US",
    ),
    Option(
        "reuse_services",
        "Keep services running after the run and re-attach to them when the configuration "
        "matches (stop them with `pytest-commons down`).",
        flag=True,
    ),
    Option(
        "create_db",
        "With --reuse-services: build again the schema templates kept on the kept servers "
        "(they are kept across runs, keyed by the schema's content; pytest-django's "
        "--create-db).",
        flag=True,
    ),
    Option(
        "services_doctor",
        "Show what each service can run on here (and why not), then exit; same as "
        "`pytest-commons doctor`.",
        flag=True,
    ),
    Option(
        "commons_server_user",
        "User that local servers run as when pytest runs as root (default: postgres if it "
        "exists, else nobody).",
    ),
)


def all_options() -> tuple[Option, ...]:
    return (*GLOBAL_OPTIONS, *_service_options())


OPTIONS: dict[str, Option] = {o.key: o for o in all_options()}


def register(option: Option) -> None:
    """Add an option to the ``commons`` group (for plugin modules that own options)."""
    OPTIONS[option.key] = option


GROUPS = {
    "commons": "pytest-commons: real services for tests",
    "commons-pact": "pytest-commons: consumer-driven contracts (Pact)",
}


def add_options(parser: pytest.Parser) -> None:
    for opt in OPTIONS.values():
        group = parser.getgroup(opt.group, GROUPS.get(opt.group, opt.group))
        text = f"{opt.help} [ini: {opt.key}; env: {opt.env}]"
        if opt.flag:
            group.addoption(
                opt.cli,
                action="store_const",
                const="true",
                default=None,
                dest=f"commons_{opt.key}",
                help=text,
            )
            parser.addini(opt.key, opt.help, type="bool", default=None)
        else:
            group.addoption(
                opt.cli,
                action="store",
                default=None,
                dest=f"commons_{opt.key}",
                choices=opt.choices,
                metavar=opt.key.upper(),
                help=text,
            )
            parser.addini(opt.key, opt.help, default=None)


def _lookup(config: pytest.Config, key: str) -> tuple[str | None, str]:
    """(value, where it came from): command line, then environment, then ini, then default."""
    opt = OPTIONS[key]
    cli: object = config.getoption(f"commons_{key}", default=None)
    if cli is not None:
        return str(cli), opt.cli
    for name in (opt.env, *opt.extra_env):
        env = os.environ.get(name)
        if env not in (None, ""):
            return env, f"${name}"
    ini = config.getini(key)
    if ini not in (None, "", []):
        value = ("true" if ini else "false") if isinstance(ini, bool) else str(ini)
        where = f"ini {key}"
        if config.inipath is not None:
            where += f" in {config.inipath.name}"
        return value, where
    return opt.default, "default"


def source(config: pytest.Config, key: str) -> str:
    """Where the value of ``key`` came from: ``--flag``, ``$PYTEST_COMMONS_…``, ``ini key in
    file`` or ``default``."""
    return _lookup(config, key)[1]


def get(config: pytest.Config, key: str) -> str | None:
    """The effective value of an option: command line, then environment, then ini, then default.

    Boolean flags come back as ``"true"``/``"false"`` or None.
    """
    opt = OPTIONS[key]
    value, where = _lookup(config, key)
    if value is not None and opt.choices and value not in opt.choices:
        raise pytest.UsageError(
            f"pytest-commons: {opt.key}={value!r} (from {where}) is not one of "
            f"{', '.join(opt.choices)}."
        )
    return value


_FLAG_WORDS = ("1", "true", "yes", "on", "0", "false", "no", "off", "")


def check(opt: Option, value: str | None) -> str | None:
    """Why ``value`` is not acceptable for ``opt`` (None when it is)."""
    if value is None:
        return None
    if opt.flag:
        if value.strip().lower() not in _FLAG_WORDS:
            return "is not a yes/no value (use true or false)"
    elif opt.kind == "seconds":
        try:
            number = float(value)
        except ValueError:
            return "is not a number of seconds"
        if not math.isfinite(number) or number <= 0:
            return "must be a finite number of seconds greater than 0"
    elif opt.kind == "path":
        path = Path(value).expanduser()
        if not path.exists():
            return "does not exist"
        if opt.key == "postgres_bindir":
            if not (path / "postgres").is_file():
                return "holds no postgres binary (give the directory of postgres and initdb)"
        elif not path.is_file() or not os.access(path, os.X_OK):
            return "is not an executable file"
    return None


def validate(config: pytest.Config) -> None:
    """Check every option's value (a usage error, exit code 4, naming the option and where
    the value came from)."""
    for key, opt in OPTIONS.items():
        value = get(config, key)
        problem = check(opt, value)
        if problem is None and value:
            problem = _url_problem(config, key, value)
        if problem:
            from pytest_commons.services.base import mask_url

            shown = mask_url(value) if value and "://" in value else value
            raise pytest.UsageError(
                f"pytest-commons: {key}={shown!r} (from {source(config, key)}) {problem}; "
                f"set it with {opt.cli}, ${opt.env} or ini {opt.key}"
            )


def _url_problem(config: pytest.Config, key: str, value: str) -> str | None:
    """An external URL is parsed at configure time by its service's own parser."""
    for meta in SERVICES.values():
        if "external" in meta.backends and key == f"{meta.name}_{meta.url_key}":
            from pytest_commons.core.registry import load_spec
            from pytest_commons.errors import ConfigError
            from pytest_commons.plugin.settings import Settings

            try:
                load_spec(meta.name, Settings(lambda k: get(config, k))).parse_url(value)
            except ValueError as exc:
                return f"is malformed: {exc}"
            except ConfigError:  # a policy refusal (AWS hosts): reported with its remedy
                return None
    return None


def get_flag(config: pytest.Config, key: str) -> bool:
    value = get(config, key)
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def backend_order(config: pytest.Config) -> list[str]:
    raw = get(config, "backend_order") or DEFAULT_BACKEND_ORDER
    order = [part.strip() for part in raw.split(",") if part.strip()]
    bad = [b for b in order if b not in BACKEND_CHOICES[1:]]
    if bad or not order:
        raise pytest.UsageError(
            f"pytest-commons: backend_order={raw!r} (from {source(config, 'backend_order')}) "
            f"names unknown backends {bad}; use a comma separated list of external, docker, local."
        )
    return order


def services_missing(config: pytest.Config) -> str:
    value = get(config, "services_missing")
    if value is None:
        value = (
            "fail" if os.environ.get("CI", "").strip().lower() not in ("", "0", "false") else "skip"
        )
    return value

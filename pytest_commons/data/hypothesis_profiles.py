"""Hypothesis profiles ``commons-dev``, ``commons-ci`` and ``commons-thorough``.

Registered without importing Hypothesis at plugin load: the plugin calls
:func:`register_profiles` only once ``hypothesis`` is in :data:`sys.modules` (or when
``--hypothesis-profile`` is given, which imports it anyway), and again right after collection,
when test modules that use Hypothesis have imported it. :func:`setup_hook` is the ``hypothesis``
entry point (run by Hypothesis itself on import): it only registers the profiles.

``commons-ci`` is loaded automatically when ``$CI`` is set, unless the user chose a profile:
``--hypothesis-profile`` or a ``settings.load_profile(...)`` in a conftest or test module wins.
"""

from __future__ import annotations

import os
import sys

PROFILES = ("commons-dev", "commons-ci", "commons-thorough")
_AUTOMATIC = ("default", "ci")  # what Hypothesis loads by itself (its "ci" when $CI is set)
_state = {"registered": False, "auto_loaded": False}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def register_profiles() -> None:
    """Register the three profiles (idempotent)."""
    if _state["registered"]:
        return
    from hypothesis import HealthCheck, settings

    slow = [HealthCheck.too_slow]
    # explicit parent: by default a profile inherits the *current* one (Hypothesis' own "ci")
    base = settings.get_profile("default")
    settings.register_profile(
        "commons-dev", base, max_examples=25, deadline=None, suppress_health_check=slow
    )
    settings.register_profile(
        "commons-ci",
        base,
        derandomize=True,
        max_examples=200,
        deadline=None,
        print_blob=True,
        database=None,
        suppress_health_check=slow,
    )
    settings.register_profile(
        "commons-thorough",
        base,
        max_examples=2000,
        deadline=None,
        print_blob=True,
        suppress_health_check=slow,
    )
    _state["registered"] = True


def current_profile() -> str | None:
    from hypothesis import settings

    getter = getattr(settings, "get_current_profile_name", None)
    if getter is not None:
        return str(getter())
    return getattr(settings, "_current_profile", None)


def maybe_load_ci_profile(cli_profile: str | None = None) -> str | None:
    """Load ``commons-ci`` when ``$CI`` is set and nobody chose a profile; returns its name."""
    if not in_ci() or cli_profile or _state["auto_loaded"]:
        return None
    register_profiles()
    if current_profile() not in _AUTOMATIC:
        return None
    from hypothesis import settings

    settings.load_profile("commons-ci")
    _state["auto_loaded"] = True
    return "commons-ci"


def setup_hook() -> None:
    """Entry point for Hypothesis' ``hypothesis`` group (run by Hypothesis on import): registers
    the profiles so ``--hypothesis-profile=commons-ci`` and ``settings.load_profile`` find them.

    It loads none: choosing ``commons-ci`` under ``$CI`` is the pytest plugin's job (at configure
    time and after collection), so ``-p no:commons`` leaves Hypothesis' own choice alone."""
    register_profiles()


def on_pytest_event(cli_profile: str | None, force: bool = False) -> None:
    """Called by the plugin at configure time and after collection."""
    if not force and "hypothesis" not in sys.modules:
        return
    register_profiles()
    maybe_load_ci_profile(cli_profile)

"""Walk an Alembic history on a real database and name the revision that breaks.

For every revision, oldest first: upgrade one step, downgrade one step, upgrade again (the
"stairway" test). A missing ``drop_table`` in a downgrade, a downgrade that leaves a type or an
index behind (the second upgrade then fails), or SQL a backend rejects all show up as a
:class:`MigrationError` naming the revision, the step and the database's error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_commons.sql import alembic_config

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

__all__ = ["MigrationError", "MigrationReport", "check_migrations"]


class MigrationError(AssertionError):
    """A step of the history walk failed: ``.revision``, ``.step`` (``"upgrade"``,
    ``"downgrade"`` or ``"upgrade again"``), ``.cause`` (the database's error)."""

    def __init__(self, revision: str, message: str, step: str, cause: BaseException) -> None:
        self.revision, self.step, self.cause = revision, step, cause
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(
            f"migration {revision} ({message!r}) fails at step '{step}': "
            f"{type(cause).__name__}: {first}"
        )


@dataclass
class MigrationReport:
    """What :func:`check_migrations` walked: revision ids, oldest first."""

    revisions: list[str] = field(default_factory=list)


def _history(cfg: AlembicConfig) -> list[Any]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    if len(script.get_heads()) > 1:
        raise ValueError(
            f"the Alembic history has several heads ({', '.join(script.get_heads())}): "
            "merge them (alembic merge heads) before walking it"
        )
    return list(reversed(list(script.walk_revisions("base", "heads"))))


def check_migrations(
    alembic: AlembicConfig | str | os.PathLike[str], url: str, *, downgrade: bool = True
) -> MigrationReport:
    """Upgrade, downgrade and upgrade again every revision of ``alembic`` (a ``Config`` or an
    ``alembic.ini`` path) on the database at ``url`` (a SQLAlchemy URL), oldest first.

    The database should start empty (at ``base``); it ends at ``head``. Raises
    :class:`MigrationError` at the first failing step. ``downgrade=False`` only upgrades
    one revision at a time (for histories that don't support downgrades).
    """
    from alembic import command

    cfg = alembic_config(alembic, url)
    report = MigrationReport()
    for rev in _history(cfg):
        parent = rev.down_revision
        below = parent if isinstance(parent, str) else "base" if parent is None else parent[0]
        steps: list[tuple[str, str, str]] = [("upgrade", "upgrade", rev.revision)]
        if downgrade:
            steps += [("downgrade", "downgrade", below), ("upgrade again", "upgrade", rev.revision)]
        for step, verb, target in steps:
            try:
                if verb == "upgrade":
                    command.upgrade(cfg, target)
                else:
                    command.downgrade(cfg, target)
            except Exception as exc:
                raise MigrationError(rev.revision, rev.doc or "", step, exc) from exc
        report.revisions.append(rev.revision)
    return report

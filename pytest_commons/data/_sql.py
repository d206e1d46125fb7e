"""Tiny adapter over the three kinds of connections the data tools accept: psycopg 3, PyMySQL
(DB-API) and SQLAlchemy (Connection or Session). No driver is imported here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_FAMILIES = ("sqlalchemy", "psycopg", "pymysql", "MySQLdb", "mysql", "sqlite3")


def family(obj: Any) -> str:
    """The driver a connection belongs to (``psycopg``, ``sqlalchemy``, …), looking through
    subclasses such as ``postgres_tx``'s connection class; ``""`` if unknown."""
    for cls in type(obj).__mro__:
        root = cls.__module__.split(".")[0]
        if root in _FAMILIES:
            return root
    return ""


class SqlTarget:
    """Executes statements on a psycopg/PyMySQL/sqlite3 connection or a SQLAlchemy
    Connection/Session, with one placeholder style (``%s``-free: values are passed as a list)."""

    def __init__(self, target: Any) -> None:
        self.target = target
        module = family(target)
        self.kind = "sqlalchemy" if module.startswith("sqlalchemy") else "dbapi"
        if self.kind == "sqlalchemy":
            bind = target.get_bind() if hasattr(target, "get_bind") else target
            self.dialect = str(bind.dialect.name)
        elif module.startswith("psycopg"):
            self.dialect = "postgresql"
        elif module.startswith(("pymysql", "MySQLdb", "mysql")):
            self.dialect = "mysql"
        elif module.startswith("sqlite3"):
            self.dialect = "sqlite"
        else:
            raise TypeError(
                f"pytest-commons: unsupported connection {type(target).__qualname__}; pass a "
                "psycopg 3 or PyMySQL connection, or a SQLAlchemy Connection or Session."
            )

    def quote(self, name: str) -> str:
        if self.dialect in ("mysql", "mariadb"):
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def execute(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run ``sql`` (placeholders ``?``-free: use :meth:`placeholders`); return columns, rows."""
        if self.kind == "sqlalchemy":
            from sqlalchemy import text

            names = [f"p{i}" for i in range(len(params))]
            for name in names:
                sql = sql.replace("\x00", f":{name}", 1)
            result = self.target.execute(text(sql), dict(zip(names, params, strict=True)))
            if result.returns_rows:
                return list(result.keys()), [tuple(r) for r in result.fetchall()]
            return [], []
        mark = "?" if self.dialect == "sqlite" else "%s"
        sql = sql.replace("%", "%%") if params and mark == "%s" else sql
        sql = sql.replace("\x00", mark)
        cur = self.target.cursor()
        try:
            cur.execute(sql, tuple(params)) if params else cur.execute(sql)
            if cur.description is None:
                return [], []
            return [d[0] for d in cur.description], [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()

    @staticmethod
    def placeholders(count: int) -> str:
        return ", ".join(["\x00"] * count)

    def columns(self, table: str) -> list[str]:
        cols, _ = self.execute(f"SELECT * FROM {self.quote_table(table)} WHERE 1 = 0")
        return cols

    def quote_table(self, table: str) -> str:
        return ".".join(self.quote(part) for part in table.split("."))

    def execute_script(self, script: str) -> None:
        if self.dialect == "postgresql" and self.kind == "dbapi":
            self.target.execute(script.encode())
            return
        for statement in split_statements(script):
            if self.kind == "sqlalchemy":
                self.target.execute(_text(statement))
            else:
                self.execute(statement)

    def commit(self) -> None:
        self.target.commit()


def _text(sql: str) -> Any:
    from sqlalchemy import text

    return text(sql)


def split_statements(script: str) -> list[str]:
    """Split SQL on ``;`` outside quotes and comments (enough for seed/schema files)."""
    out: list[str] = []
    buf: list[str] = []
    i, quote = 0, ""
    while i < len(script):
        ch = script[i]
        if quote:
            buf.append(ch)
            if ch == quote:
                quote = ""
        elif ch in ("'", '"', "`"):
            quote = ch
            buf.append(ch)
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = len(script) if end < 0 else end
            continue
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = len(script) if end < 0 else end + 2
            continue
        elif ch == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
        else:
            buf.append(ch)
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out

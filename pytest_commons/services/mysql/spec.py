"""MySQL/MariaDB: connection info, readiness probe, database helpers and the local engine.

The local engine initialises a data directory once per server binary and settings
(``mariadb-install-db``, ``mysql_install_db`` or ``mysqld --initialize-insecure``), keeps it in
the cache directory, and copies it for every run; the server runs with durability off, on
127.0.0.1 only, with its socket inside its data directory and ``root`` (no password) allowed
over TCP.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pytest_commons.core.childenv import child_env
from pytest_commons.core.host import cached_build, copy_datadir
from pytest_commons.errors import NotReady, ProbeRefused, ServiceStartError
from pytest_commons.services.base import ConnectionInfo, DockerLaunch, LocalLaunch, ServiceSpec
from pytest_commons.services.mysql import MysqlConfig

if TYPE_CHECKING:
    import pymysql.connections

SCHEMES = ("mysql", "mariadb", "mysql+pymysql", "mariadb+pymysql", "mysql+mysqldb")
SERVER_NAMES = ["mariadbd", "mysqld"]
SERVER_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/mysql/bin", "/usr/local/bin"]
INSTALL_DB_NAMES = ["mariadb-install-db", "mysql_install_db"]
# settings shared by the initialisation and every start (InnoDB refuses files made otherwise)
STORAGE_ARGS = (
    "--innodb-log-file-size=4M",
    "--innodb-data-file-path=ibdata1:1M:autoextend",
    "--innodb-autoextend-increment=1",
    "--innodb-doublewrite=0",
    "--innodb-buffer-pool-size=64M",
)
# durability off: the data is thrown away after the run
FAST_ARGS = (
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-flush-method=nosync",
    "--skip-log-bin",
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--max-connections=300",
    "--loose-mysqlx=0",
)
# MySQL error codes the probe treats as "it answers but refuses us"
REFUSAL_CODES = frozenset({1044, 1045, 1049, 1130, 1251, 1698, 2059})
# Oracle MySQL: root@localhost only matches the socket when names are not resolved
ZONEINFO = "/usr/share/zoneinfo"
TZINFO_TO_SQL_NAMES = ("mariadb-tzinfo-to-sql", "mysql_tzinfo_to_sql")
ROOT_TCP_SQL = """\
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'root'@'::1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
"""
# Run at every start of a local server (--init-file): root needs the run's password (the cached
# data directory has none, so that no password outlives its run). The file is 0600 in the
# server's 0700 data directory.
SECURE_SQL = """\
ALTER USER IF EXISTS 'root'@'localhost' IDENTIFIED BY '{password}';
ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '{password}';
ALTER USER IF EXISTS 'root'@'::1' IDENTIFIED BY '{password}';
DROP USER IF EXISTS ''@'localhost';
DROP USER IF EXISTS ''@'{hostname}';
DROP USER IF EXISTS 'root'@'{hostname}';
"""
_IDENT = re.compile(r"^[A-Za-z0-9_$]{1,64}$")
_FLAVOURS: dict[tuple[str, int], str] = {}


@dataclass(frozen=True, repr=False)
class MysqlInfo(ConnectionInfo):
    """Where a MySQL/MariaDB server listens and how to log in (``dbname`` may be empty)."""

    user: str = "root"
    password: str = ""
    dbname: str = ""

    @property
    def url(self) -> str:
        """``mysql://user:password@host:port/dbname``."""
        return self._url("mysql")

    @property
    def sqlalchemy_url(self) -> str:
        """``mysql+pymysql://…`` for SQLAlchemy (pass ``connect_args=info.connect_args``)."""
        return self._url("mysql+pymysql")

    def _url(self, scheme: str) -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.address}/{quote(self.dbname, safe='')}"

    @property
    def connect_args(self) -> dict[str, Any]:
        """Driver options that are not part of the URL: TLS off (a TLS context costs ≈30 ms
        per PyMySQL connect; the server is on loopback) and utf8mb4."""
        return {"ssl_disabled": True, "charset": "utf8mb4"} if self.is_loopback else {}

    @property
    def is_loopback(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost")

    def connect_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect``."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "charset": "utf8mb4",
        }
        if self.dbname:
            kwargs["database"] = self.dbname
        kwargs.update(self.connect_args)
        kwargs.update(overrides)
        return kwargs

    def with_db(self, dbname: str) -> MysqlInfo:
        return replace(self, dbname=dbname)

    def describe(self) -> str:
        return f"{self.user}@{self.address}"


def quote_ident(name: str) -> str:
    """`name` in backticks; only plain names (letters, digits, _ and $, ≤ 64) are accepted."""
    if not _IDENT.match(name):
        raise ValueError(f"invalid database name {name!r}")
    return f"`{name}`"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _error_code(exc: BaseException) -> int:
    args = getattr(exc, "args", ())
    return int(args[0]) if args and isinstance(args[0], int) else 0


def _can_execute(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` (not root) may run ``path``: x on it and on every parent."""

    def allowed(target: Path, bit: int) -> bool:
        st = target.stat()
        if st.st_uid == uid:
            return bool(st.st_mode & (bit << 6))
        if st.st_gid == gid:
            return bool(st.st_mode & (bit << 3))
        return bool(st.st_mode & bit)

    try:
        real = path.resolve()
        return allowed(real, 1) and all(allowed(parent, 1) for parent in real.parents)
    except OSError:
        return False


class MysqlSpec(ServiceSpec[MysqlInfo]):
    config: MysqlConfig
    name = "mysql"
    info_type = MysqlInfo
    driver_module = "pymysql"

    # external ---------------------------------------------------------------------------------
    def parse_url(self, url: str) -> MysqlInfo:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(
                f"scheme must be mysql://, mariadb:// or mysql+pymysql://, "
                f"got {parts.scheme or 'none'!r}"
            )
        if not parts.hostname:
            raise ValueError("no host")
        try:
            port = parts.port or 3306
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        dbname = unquote(parts.path.lstrip("/"))
        if "/" in dbname:
            raise ValueError(f"bad database name {dbname!r}")
        return MysqlInfo(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            dbname=dbname,
        )

    # driver -----------------------------------------------------------------------------------
    def connect(
        self, info: MysqlInfo, *, timeout: float = 5, **kwargs: Any
    ) -> pymysql.connections.Connection[Any]:
        """A PyMySQL connection (autocommit unless told otherwise, TLS off on loopback)."""
        import pymysql

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", max(1, int(timeout)))
        return pymysql.connect(**info.connect_kwargs(**kwargs))

    def probe(self, info: MysqlInfo, timeout: float) -> str:
        import pymysql

        try:
            # connect_timeout covers only the TCP connect: without a read timeout, a peer that
            # accepts but never greets (a paused server, another protocol) blocks the probe
            conn = self.connect(info, timeout=timeout, read_timeout=timeout, write_timeout=timeout)
        except pymysql.err.OperationalError as exc:
            if _error_code(exc) in REFUSAL_CODES:
                raise ProbeRefused(f"the server refused us: {_first_line(exc)}") from None
            raise NotReady(_first_line(exc)) from None
        except pymysql.err.InternalError as exc:  # e.g. a half-started server's handshake
            raise NotReady(_first_line(exc)) from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                row = cur.fetchone()
        finally:
            conn.close()
        return str(row[0]) if row else "?"

    # databases --------------------------------------------------------------------------------
    def create_database(self, admin: pymysql.connections.Connection[Any], name: str) -> None:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {quote_ident(name)}")

    def drop_database(self, admin: pymysql.connections.Connection[Any], name: str) -> None:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}")

    # local ------------------------------------------------------------------------------------
    def server_binary(self) -> Path | None:
        explicit = self.config.server
        if explicit:
            path = Path(explicit)
            return path if path.is_file() and os.access(path, os.X_OK) else None
        for name in SERVER_NAMES:
            found = shutil.which(name)
            if found:
                return Path(found)
        for directory in SERVER_DIRS:
            for name in SERVER_NAMES:
                candidate = Path(directory) / name
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return candidate
        return None

    def flavour(self, server: Path) -> str:
        """``"mariadb"`` or ``"mysql"`` (Oracle MySQL)."""
        if server.resolve().name.startswith("mariadb"):
            return "mariadb"
        st = server.stat()
        key = (str(server), st.st_mtime_ns)
        if key not in _FLAVOURS:
            out = ""
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [str(server), "--no-defaults", "--version"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    env=child_env(),
                ).stdout
            _FLAVOURS[key] = "mariadb" if "mariadb" in out.lower() else "mysql"
        return _FLAVOURS[key]

    def install_db(self, server: Path) -> Path | None:
        """MariaDB's install script belonging to ``server`` (None for Oracle MySQL)."""
        real = server.resolve()
        for directory in (real.parent, real.parent.parent / "bin", real.parent.parent / "scripts"):
            for name in INSTALL_DB_NAMES:
                candidate = directory / name
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return candidate
        for name in INSTALL_DB_NAMES:
            found = shutil.which(name)
            if found:
                return Path(found)
        return None

    def local_unavailable(self) -> tuple[str, str] | None:
        server = self.server_binary()
        explicit = self.config.server
        if server is None:
            if explicit:
                return (
                    f"no executable server at {self.config.named('mysql_server')}",
                    "point it at a mariadbd or mysqld binary, or unset it",
                )
            return (
                "no MariaDB/MySQL server (mariadbd, mysqld) on PATH or in "
                + ", ".join(SERVER_DIRS),
                "apt-get install mariadb-server (or mysql-server), or set "
                "PYTEST_COMMONS_MYSQL_SERVER to the mariadbd/mysqld binary",
            )
        if self.flavour(server) == "mariadb" and self.install_db(server) is None:
            return (
                f"found {server} but not mariadb-install-db/mysql_install_db",
                "install the full MariaDB server package (mariadb-server)",
            )
        return None

    def _init_argv(self, server: Path, work: Path) -> list[str]:
        if self.flavour(server) == "mysql":
            init_file = work.parent / (work.name + ".init.sql")
            return [
                str(server),
                "--no-defaults",
                "--initialize-insecure",
                f"--datadir={work}",
                f"--init-file={init_file}",
                *STORAGE_ARGS,
            ]
        install_db = self.install_db(server)
        assert install_db is not None
        argv = [
            str(install_db),
            "--no-defaults",
            f"--datadir={work}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
            *STORAGE_ARGS,
        ]
        real = server.resolve()
        if install_db.resolve().parent.parent == real.parent.parent and not str(real).startswith(
            "/usr/sbin/"
        ):
            argv.insert(2, f"--basedir={real.parent.parent}")
        return argv

    def _datadir_cache(self, server: Path, user: tuple[int, int] | None) -> Path:
        st = server.resolve().stat()
        key = hashlib.sha256(
            repr(
                (
                    str(server.resolve()),
                    st.st_size,
                    st.st_mtime_ns,
                    STORAGE_ARGS,
                    ROOT_TCP_SQL,
                    user,
                    "time zones loaded",
                )
            ).encode()
        ).hexdigest()[:16]
        cache = self.run_config.cache_dir() / "mysql" / key

        def install_db(work: Path) -> None:
            init_file = work.parent / (work.name + ".init.sql")
            extra = self.time_zone_sql(server) if self.flavour(server) == "mysql" else None
            init_file.write_text(ROOT_TCP_SQL + (extra or ""))
            os.chmod(init_file, 0o644)
            kwargs: dict[str, Any] = {}
            if self.flavour(server) == "mariadb":
                work.mkdir(mode=0o700)
                if user is not None:
                    os.chown(work, *user)
            if user is not None:
                kwargs = {"user": user[0], "group": user[1], "extra_groups": []}
            argv = self._init_argv(server, work)
            try:
                result = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    cwd=str(work.parent),
                    env={**os.environ, "LC_ALL": "C"},
                    **kwargs,
                )
                if result.returncode != 0 or not (work / "mysql").is_dir():
                    raise ServiceStartError(
                        self.name,
                        "local",
                        f"{Path(argv[0]).name} failed with code {result.returncode}",
                        log_tail=(result.stdout + result.stderr)[-3000:],
                        remedy="check the MariaDB/MySQL installation, or set "
                        "PYTEST_COMMONS_MYSQL_SERVER",
                    )
            finally:
                with contextlib.suppress(OSError):
                    init_file.unlink()

            self._load_time_zones(server, work, kwargs)

        return cached_build(cache, lambda c: (c / "mysql").is_dir(), install_db)

    @staticmethod
    def time_zone_sql(server: Path) -> str | None:
        """The ``mysql.time_zone*`` rows for the named zones in /usr/share/zoneinfo (from
        mariadb-tzinfo-to-sql / mysql_tzinfo_to_sql next to the server or on PATH), or None
        when either is missing."""
        if not Path(ZONEINFO).is_dir():
            return None
        real = server.resolve()
        for name in TZINFO_TO_SQL_NAMES:
            found = real.parent.parent / "bin" / name
            tool = str(found) if found.is_file() else shutil.which(name)
            if tool:
                result = subprocess.run(
                    [tool, ZONEINFO],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                    env=child_env(),
                )
                if result.returncode == 0 and result.stdout:
                    return "USE mysql;\n" + result.stdout
        return None

    def _load_time_zones(self, server: Path, work: Path, kwargs: dict[str, Any]) -> None:
        """Named time zones (``CONVERT_TZ(.., 'America/New_York')``) in the cached MariaDB
        datadir (Oracle MySQL loads them from its --init-file, see ``install_db``)."""
        sql = self.time_zone_sql(server)
        if sql is None or self.flavour(server) == "mysql":
            return
        result = subprocess.run(
            [str(server), "--no-defaults", "--bootstrap", f"--datadir={work}", *STORAGE_ARGS],
            input=sql,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=str(work.parent),
            env={**os.environ, "LC_ALL": "C"},
            **kwargs,
        )
        if result.returncode != 0:
            raise ServiceStartError(
                self.name,
                "local",
                f"the server exited with code {result.returncode} during start (mariadbd "
                "--bootstrap, loading the named time zones into the cached datadir)",
                log_tail=(result.stdout + result.stderr)[-3000:],
                remedy="check the MariaDB installation (the log above), or set "
                "PYTEST_COMMONS_MYSQL_SERVER",
            )

    def local_prepare(self, datadir: Path, server_user: tuple[int, int] | None) -> None:
        server = self.server_binary()
        assert server is not None
        if server_user is not None and not _can_execute(server, *server_user):
            raise ServiceStartError(
                self.name,
                "local",
                f"the server user (uid {server_user[0]}) cannot execute {server}",
                remedy="install the server where every user can run it (e.g. apt-get install "
                "mariadb-server), make its directories world-executable, or choose the user "
                "with --commons-server-user",
            )
        copy_datadir(self._datadir_cache(server, server_user), datadir, server_user)

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        server = self.server_binary()
        assert server is not None
        init_file = datadir / "commons-init.sql"
        import socket

        hostname = socket.gethostname().replace("'", "")  # install-db made root@<hostname>
        init_file.write_text(SECURE_SQL.format(password=self.run_password, hostname=hostname))
        # SELECT … INTO OUTFILE / LOAD DATA INFILE only in an empty directory of the server's
        files = datadir.parent / "files"
        files.mkdir(mode=0o700, exist_ok=True)
        for path in (init_file, files):
            os.chmod(path, 0o600 if path.is_file() else 0o700)
            if server_user is not None:
                os.chown(path, *server_user)
        argv = [
            str(server),
            "--no-defaults",  # must come first
            f"--datadir={datadir}",
            f"--init-file={init_file}",
            f"--secure-file-priv={files}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={datadir}/mysqld.sock",
            f"--pid-file={datadir}/mysqld.pid",
            f"--tmpdir={datadir}",
            *STORAGE_ARGS,
            *FAST_ARGS,
        ]
        return LocalLaunch(
            argv=argv,
            info=MysqlInfo(
                host="127.0.0.1", port=port, user="root", password=self.run_password
            ).to_dict(),
            # as root, the server runs as the unprivileged server user (no --user needed)
            run_as_server_user=True,
            stop_signal=signal.SIGKILL,  # the data is thrown away anyway
            graceful_signal=signal.SIGTERM,  # clean shutdown, for restart()
            port_in_use_markers=("Address already in use", "Do you already have another"),
        )

    # docker -----------------------------------------------------------------------------------
    def docker_launch(self, image: str) -> DockerLaunch:
        # the official mysql and mariadb images both read the MYSQL_* variables
        return DockerLaunch(
            image=image,
            container_port=3306,
            env={"MYSQL_ROOT_PASSWORD": "commons-root", "MYSQL_DATABASE": "test"},
        )

    def docker_secure(self, info: MysqlInfo) -> MysqlInfo:
        """Every ``root`` account of the image (password ``commons-root``) gets the run's
        password."""
        import dataclasses

        conn = self.connect(info)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT Host FROM mysql.user WHERE User = 'root'")
                for (host,) in cur.fetchall():
                    cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, self.run_password))
        finally:
            conn.close()
        return dataclasses.replace(info, password=self.run_password)

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> MysqlInfo:
        return MysqlInfo(
            host=host,
            port=port,
            user="root",
            password=launch.env["MYSQL_ROOT_PASSWORD"],
            dbname="",  # server-level, like the local engine: fixtures name their databases
        )

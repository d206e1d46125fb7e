"""PostgreSQL: connection info, readiness probe, database cloning and the local engine.

The local engine copies an initialised cluster from a cache (keyed by the server binary and the
initdb settings) instead of running initdb every run, and runs with durability off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pytest_commons.core.childenv import child_env
from pytest_commons.core.host import cached_build, copy_datadir, make_spare, take_spare
from pytest_commons.errors import NotReady, ProbeRefused, ServiceStartError
from pytest_commons.services.base import ConnectionInfo, DockerLaunch, LocalLaunch, ServiceSpec
from pytest_commons.services.postgres import PostgresConfig

if TYPE_CHECKING:
    import psycopg

INITDB_ARGS = (
    "--auth=trust",
    "--username=postgres",
    "--encoding=UTF8",
    "--locale=C",
    "--wal-segsize=1",
    "--no-sync",
)
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_permissions": "0700",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "300",
    "autovacuum": "off",
    # dynamic shared memory as files in the data directory, removed with it: the default
    # (posix) leaves a /dev/shm/PostgreSQL.* segment behind for every server that is killed
    # (≈2 per full run of this project's suite, 14 MB of RAM by the evening)
    "dynamic_shared_memory_type": "mmap",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] ",
}
REFUSALS = (
    "password authentication failed",
    "no password supplied",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
    "authentication failed",
)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# The local server's pg_hba.conf, written for every run (the cached cluster's trust lines are
# never used): TCP logins need the run's password; the unix socket sits in a 0700 directory
# only the server's user (and root) can enter, and is how the password is set at start.
PG_HBA = """\
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""
# The run's password is stored as a SCRAM verifier computed here with few PBKDF2 rounds: the
# password is 128 random bits, so the 4096 default rounds buy nothing against guessing and cost
# every connect of every test (see docs/reliability.md for the figures).
SCRAM_ITERATIONS = 16
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes with the terminating NUL; keep a margin


@dataclass(frozen=True, repr=False)
class PostgresInfo(ConnectionInfo):
    """Where a PostgreSQL server listens and how to log in."""

    user: str = "postgres"
    password: str = ""
    dbname: str = "postgres"

    @property
    def url(self) -> str:
        """``postgresql://user:password@host:port/dbname``."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{self.address}/{quote(self.dbname, safe='')}"

    @property
    def dsn(self) -> str:
        """A libpq keyword/value string."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "dbname": self.dbname,
        }
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{key}={_libpq_quote(value)}" for key, value in parts.items())

    def with_db(self, dbname: str) -> PostgresInfo:
        return replace(self, dbname=dbname)

    def describe(self) -> str:
        return f"{self.user}@{self.address}"


def _process_ended(pid: int) -> bool:
    """Whether process ``pid`` has exited (gone, or a zombie its parent has not reaped yet).
    True where there is no ``/proc`` to tell."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def scram_verifier(password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (``pg_authid.rolpassword``)."""
    import base64
    import hmac

    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    stored = b64(hashlib.sha256(client_key).digest())
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${stored}:{b64(server_key)}"


def _socket_dir(datadir: Path, port: int, server_user: tuple[int, int] | None) -> Path:
    """The directory of the server's unix socket: its 0700 data directory, or (when that path
    is too long for a socket) a 0700 directory of its own in /tmp."""
    if len(f"{datadir}/.s.PGSQL.{port}") <= SOCKET_PATH_MAX:
        return datadir
    digest = hashlib.sha256(str(datadir).encode()).hexdigest()[:12]
    path = Path("/tmp") / f"pytest-commons-pg-{digest}"
    path.mkdir(mode=0o700, exist_ok=True)
    if server_user is not None:
        os.chown(path, *server_user)
    os.chmod(path, 0o700)
    return path


def _libpq_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"invalid database name {name!r}")
    return f'"{name}"'


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class PostgresSpec(ServiceSpec[PostgresInfo]):
    config: PostgresConfig
    name = "postgres"
    info_type = PostgresInfo
    driver_module = "psycopg"

    # driver / external ------------------------------------------------------------------------
    def parse_url(self, url: str) -> PostgresInfo:
        parts = urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"scheme must be postgresql://, got {parts.scheme or 'none'!r}")
        try:
            port = parts.port or 5432
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        if not parts.hostname:
            raise ValueError("no host")
        return PostgresInfo(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
        )

    def connect(
        self, info: PostgresInfo, *, timeout: float = 5, **kwargs: Any
    ) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(info.dsn, connect_timeout=max(1, int(timeout)), **kwargs)

    def probe(self, info: PostgresInfo, timeout: float) -> str:
        import psycopg

        try:
            conn = self.connect(info, timeout=timeout, autocommit=True)
        except psycopg.OperationalError as exc:
            text = _first_line(exc)
            if any(marker in str(exc) for marker in REFUSALS):
                raise ProbeRefused(f"the server refused us: {text}") from None
            raise NotReady(text) from None
        with conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    # databases --------------------------------------------------------------------------------
    def create_database(
        self, admin: psycopg.Connection[Any], name: str, template: str | None = None
    ) -> None:
        sql = f"CREATE DATABASE {quote_ident(name)}"
        if template:
            sql += f" TEMPLATE {quote_ident(template)} STRATEGY FILE_COPY"
        admin.execute(sql.encode())

    def drop_database(self, admin: psycopg.Connection[Any], name: str) -> None:
        admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)".encode())

    # local ------------------------------------------------------------------------------------
    def bindir(self) -> Path | None:
        explicit = self.config.bindir
        if explicit:
            return Path(explicit) if (Path(explicit) / "postgres").is_file() else None
        found = shutil.which("postgres")
        if found:
            return Path(found).parent
        pg_config = shutil.which("pg_config")
        if pg_config:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [pg_config, "--bindir"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=True,
                    env=child_env(),
                ).stdout.strip()
                if out and (Path(out) / "postgres").is_file():
                    return Path(out)
        candidates = sorted(
            (
                p
                for pattern in (
                    "/usr/lib/postgresql/*/bin",
                    "/usr/pgsql-*/bin",
                    "/usr/local/pgsql/bin",
                    "/opt/homebrew/opt/postgresql*/bin",
                )
                for p in Path("/").glob(pattern.lstrip("/"))
                if (p / "postgres").is_file()
            ),
            key=lambda p: [int(x) for x in re.findall(r"\d+", str(p))] or [0],
            reverse=True,
        )
        return candidates[0] if candidates else None

    def local_unavailable(self) -> tuple[str, str] | None:
        if self.bindir() is None:
            explicit = self.config.bindir
            if explicit:
                return (
                    f"no postgres binary in {self.config.named('postgres_bindir')}",
                    "point it at the directory holding postgres and initdb",
                )
            return (
                "no PostgreSQL server binaries (postgres, initdb) on PATH, in "
                "`pg_config --bindir` or /usr/lib/postgresql/*/bin",
                "apt-get install postgresql, or set PYTEST_COMMONS_POSTGRES_BINDIR",
            )
        return None

    def _cluster_cache_path(self, bindir: Path, user: tuple[int, int] | None) -> Path:
        st = (bindir / "postgres").stat()
        key = hashlib.sha256(
            repr((str(bindir), st.st_size, st.st_mtime_ns, INITDB_ARGS, user)).encode()
        ).hexdigest()[:16]
        return self.run_config.cache_dir() / "postgres" / key

    def _cluster_cache(self, bindir: Path, user: tuple[int, int] | None) -> Path:
        cache = self._cluster_cache_path(bindir, user)

        def initdb(work: Path) -> None:
            work.mkdir(mode=0o700)
            kwargs: dict[str, Any] = {}
            if user is not None:
                os.chown(work, *user)
                kwargs = {"user": user[0], "group": user[1], "extra_groups": []}
            result = subprocess.run(
                [str(bindir / "initdb"), "-D", str(work), *INITDB_ARGS],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=str(work),
                env={**os.environ, "LC_ALL": "C"},
                **kwargs,
            )
            if result.returncode != 0:
                raise ServiceStartError(
                    self.name,
                    "local",
                    f"initdb failed with code {result.returncode}",
                    log_tail=(result.stdout + result.stderr)[-3000:],
                    remedy="check the PostgreSQL installation, or set "
                    "PYTEST_COMMONS_POSTGRES_BINDIR",
                )

        return cached_build(cache, lambda c: (c / "PG_VERSION").is_file(), initdb)

    def local_prepare(self, datadir: Path, server_user: tuple[int, int] | None) -> None:
        bindir = self.bindir()
        assert bindir is not None
        # a spare copy made during an earlier run is renamed into place; else copy the cache
        if not take_spare(self._cluster_cache_path(bindir, server_user), datadir, server_user):
            copy_datadir(self._cluster_cache(bindir, server_user), datadir, server_user)
        hba = datadir / "pg_hba.conf"
        hba.write_text(PG_HBA)
        os.chmod(hba, 0o600)
        if server_user is not None:
            os.chown(hba, *server_user)

    def local_ready(self, datadir: Path, server_user: tuple[int, int] | None) -> None:
        """The next run's copy of the cluster, made once this server answers (not during its
        start, which it would slow down), in a thread Python waits for at exit."""
        bindir = self.bindir()
        assert bindir is not None
        threading.Thread(
            target=make_spare,
            args=(lambda: self._cluster_cache(bindir, server_user),),
            name="commons-postgres-spare",
        ).start()

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        bindir = self.bindir()
        assert bindir is not None
        sockets = _socket_dir(datadir, port, server_user)
        argv = [str(bindir / "postgres"), "-D", str(datadir), "-p", str(port)]
        for key, value in {**SERVER_SETTINGS, "unix_socket_directories": str(sockets)}.items():
            argv += ["-c", f"{key}={value}"]
        return LocalLaunch(
            argv=argv,
            info=PostgresInfo(host="127.0.0.1", port=port, password=self.run_password).to_dict(),
            ready_info=PostgresInfo(host=str(sockets), port=port).to_dict(),
            paths=[] if sockets == datadir else [str(sockets)],
            run_as_server_user=True,
            stop_signal=signal.SIGQUIT,  # immediate shutdown: the data is thrown away anyway
            graceful_signal=signal.SIGINT,  # fast shutdown: flushes WAL, for restart()
            port_in_use_markers=("could not bind", "Address already in use"),
        )

    def local_secure(self, launch: LocalLaunch) -> None:
        """Set the run's password over the private socket (TCP logins need it from now on).

        Done from ``template1``: that first connection writes ``template1``'s relation-cache
        init file (``pg_internal.init``), which every database cloned from it then carries, so a
        test's first connection to its fresh database loads the system catalogs' cache instead
        of building it (≈3 ms of the server's CPU per connection)."""
        import time

        assert launch.ready_info is not None
        info = self.info_from_dict(launch.ready_info)
        with self.connect(info.with_db("template1"), autocommit=True) as conn:
            conn.execute(f"ALTER ROLE postgres PASSWORD '{scram_verifier(self.run_password)}'")
            pid = conn.info.backend_pid
        # its backend exits a moment after the close; a clone of template1 while it is still
        # in the server's process array would wait for "other users" of the template
        # (PostgreSQL looks again every 100 ms). It leaves the array before its process ends.
        deadline = time.monotonic() + 5
        while not _process_ended(pid) and time.monotonic() < deadline:
            time.sleep(0.0005)

    # docker -----------------------------------------------------------------------------------
    def docker_launch(self, image: str) -> DockerLaunch:
        # testcontainers' defaults (test/test/test): the project's test image pre-initialises
        # its cluster for exactly these, so it starts without running initdb
        return DockerLaunch(
            image=image,
            container_port=5432,
            env={"POSTGRES_USER": "test", "POSTGRES_PASSWORD": "test", "POSTGRES_DB": "test"},
        )

    def docker_secure(self, info: PostgresInfo) -> PostgresInfo:
        """The image's role ``test`` (password ``test``) gets the run's password."""
        import dataclasses

        from psycopg import sql

        with self.connect(info, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(info.user), sql.Literal(scram_verifier(self.run_password))
                )
            )
        return dataclasses.replace(info, password=self.run_password)

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> PostgresInfo:
        return PostgresInfo(
            host=host,
            port=port,
            user=launch.env["POSTGRES_USER"],
            password=launch.env["POSTGRES_PASSWORD"],
            dbname=launch.env["POSTGRES_DB"],
        )

"""Redis (or Valkey): connection info, readiness probe, database claiming and the local engine."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pytest_commons.backends.local import which_any
from pytest_commons.errors import NotReady, ProbeRefused
from pytest_commons.services.base import ConnectionInfo, DockerLaunch, LocalLaunch, ServiceSpec

if TYPE_CHECKING:
    import redis

LOCAL_DATABASES = 256
CLAIM_KEY = "pytest-commons:claim"
CLAIM_SECONDS = 3600
SBIN = ["/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/local/sbin", "/opt/homebrew/bin"]


@dataclass(frozen=True, repr=False)
class RedisInfo(ConnectionInfo):
    """Where a Redis server listens, how to log in, and which database index to use."""

    password: str = ""
    username: str = ""
    db: int = 0
    ssl: bool = False

    @property
    def url(self) -> str:
        """``redis://[user:password@]host:port/db``."""
        auth = ""
        if self.password:
            auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return f"{'rediss' if self.ssl else 'redis'}://{auth}{self.address}/{self.db}"

    def with_db(self, db: int) -> RedisInfo:
        return replace(self, db=db)


class RedisSpec(ServiceSpec[RedisInfo]):
    name = "redis"
    info_type = RedisInfo
    driver_module = "redis"

    def parse_url(self, url: str) -> RedisInfo:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(
                f"scheme must be redis:// or rediss://, got {parts.scheme or 'none'!r}"
            )
        if not parts.hostname:
            raise ValueError("no host")
        try:
            port = parts.port or 6379
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        path = parts.path.lstrip("/")
        if path and not path.isdigit():
            raise ValueError(f"the path must be a database number, got {path!r}")
        return RedisInfo(
            host=parts.hostname,
            port=port,
            password=unquote(parts.password or ""),
            username=unquote(parts.username or ""),
            db=int(path or 0),
            ssl=parts.scheme == "rediss",
        )

    def client(self, info: RedisInfo, *, timeout: float = 5, **kwargs: Any) -> redis.Redis:
        import redis

        return redis.Redis(
            host=info.host,
            port=info.port,
            db=info.db,
            password=info.password or None,
            username=info.username or None,
            ssl=info.ssl,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            **kwargs,
        )

    def probe(self, info: RedisInfo, timeout: float) -> str:
        from redis import exceptions as rex
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # one attempt: the readiness wait retries; redis-py's own retries (10 with backoff in
        # redis-py 8) would make one probe outlast its timeout several times over
        client = self.client(info, timeout=timeout, retry=Retry(NoBackoff(), 0))
        try:
            server = client.info("server")
        except (rex.AuthenticationError, rex.AuthorizationError) as exc:
            raise ProbeRefused(f"the server refused the credentials: {exc}") from None
        except rex.ResponseError as exc:
            if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc):
                raise ProbeRefused(f"the server refused the credentials: {exc}") from None
            raise NotReady(str(exc)) from None
        except (rex.ConnectionError, rex.TimeoutError, rex.BusyLoadingError) as exc:
            raise NotReady(str(exc)) from None
        finally:
            client.close()
        return str(server.get("redis_version", "?"))

    # database ownership on servers we don't own ---------------------------------------------
    def claim_database(self, info: RedisInfo, owner: str) -> int:
        """Claim a database index (never 0) that is empty, so flushing it touches only our keys.

        The claim is a key ``pytest-commons:claim:<index>`` in database 0 (expiring after an
        hour, so a killed run's claims lapse); the claimed database itself stays empty.
        """
        registry = self.client(info.with_db(0))
        try:
            try:
                count = int(str(registry.config_get("databases").get("databases", 16)))
            except Exception:  # CONFIG may be disabled on managed servers
                count = 16
            for index in range(count - 1, 0, -1):
                key = f"{CLAIM_KEY}:{index}"
                if not registry.set(key, owner, nx=True, ex=CLAIM_SECONDS):
                    continue
                db = self.client(info.with_db(index))
                try:
                    if db.dbsize() == 0:
                        return index
                finally:
                    db.close()
                registry.delete(key)  # holds others' keys: not ours to flush
        finally:
            registry.close()
        raise ProbeRefused(
            f"no empty database index among {count} on {info.address} to claim; "
            "pytest-commons never flushes a database holding others' keys"
        )

    def release_database(self, info: RedisInfo) -> None:
        db = self.client(info)
        registry = self.client(info.with_db(0))
        try:
            db.flushdb()
            registry.delete(f"{CLAIM_KEY}:{info.db}")
        finally:
            db.close()
            registry.close()

    # local ------------------------------------------------------------------------------------
    def server_binary(self) -> str | None:
        return which_any(["redis-server", "valkey-server"], SBIN)

    def local_unavailable(self) -> tuple[str, str] | None:
        if self.server_binary() is None:
            return (
                "redis-server (or valkey-server) is not installed",
                "apt-get install redis-server, set PYTEST_COMMONS_REDIS_URL, or start Docker",
            )
        return None

    def local_launch(
        self, datadir: Path, port: int, server_user: tuple[int, int] | None
    ) -> LocalLaunch:
        binary = self.server_binary()
        assert binary is not None
        # the password goes in a file (0600, in the 0700 data directory), not on the command
        # line every local user can read
        conf = datadir / "redis.conf"
        conf.write_text(f"requirepass {self.run_password}\n")
        os.chmod(conf, 0o600)
        if server_user is not None:
            os.chown(conf, *server_user)
        argv = [
            binary,
            str(conf),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(datadir),
            "--databases",
            str(LOCAL_DATABASES),
            "--hz",
            "100",
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--protected-mode",
            "yes",
        ]
        return LocalLaunch(
            argv=argv,
            info=RedisInfo(host="127.0.0.1", port=port, password=self.run_password).to_dict(),
            # nothing is persisted, so nothing is lost; SIGTERM would wait for the next
            # serverCron tick (up to 10 ms) before the server exits
            stop_signal=signal.SIGKILL,
        )

    # docker -----------------------------------------------------------------------------------
    def docker_launch(self, image: str) -> DockerLaunch:
        # like the local engine: no persistence, so a restart starts empty on every backend
        return DockerLaunch(
            image=image,
            container_port=6379,
            command=[
                "redis-server",
                "--requirepass",
                "commons",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> RedisInfo:
        return RedisInfo(host=host, port=port, password="commons")

"""Redis (or Valkey): connection info, readiness probe, database claiming and the local engine."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

from pytest_commons.core.host import which_any
from pytest_commons.core.run import owner_stamp, stamp_is_dead
from pytest_commons.errors import NotReady, ProbeRefused
from pytest_commons.services.base import (
    ConnectionInfo,
    DockerLaunch,
    LocalLaunch,
    SecretURL,
    ServiceSpec,
)
from pytest_commons.services.redis import RedisConfig

if TYPE_CHECKING:
    import redis

LOCAL_DATABASES = 256
#: the name (CLIENT SETNAME) of the plugin's own connections: the leak check leaves them out
OWN_CLIENT_NAME = "pytest-commons"
#: local ports of the plugin's own connections in this process (the leak check leaves them out,
#: whatever name a test gives them with CLIENT SETNAME)
OWN_PORTS: set[int] = set()
CLAIM_KEY = "pytest-commons:claim"


def own_port(sock: Any) -> None:
    """Remember ``sock`` (a socket, or an asyncio transport) as one of the plugin's own."""
    name = sock.get_extra_info("sockname") if hasattr(sock, "get_extra_info") else None
    if name is None:
        name = sock.getsockname()
    if isinstance(name, tuple) and len(name) >= 2:
        OWN_PORTS.add(int(name[1]))


CLAIM_HEARTBEAT_SECONDS = 30.0  # a claim says it is alive this often
CLAIM_STALE_SECONDS = 600  # from another host: dead after this long without a heartbeat
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
        """``redis://[user:password@]host:port/db``, a :class:`SecretURL` (a ``str`` whose repr
        masks the password)."""
        auth = ""
        if self.password:
            auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return SecretURL(f"{'rediss' if self.ssl else 'redis'}://{auth}{self.address}/{self.db}")

    def with_db(self, db: int) -> RedisInfo:
        return replace(self, db=db)


class RedisSpec(ServiceSpec[RedisInfo]):
    config: RedisConfig
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
        """A redis-py client on ``info`` (its connections are named ``pytest-commons``: the
        connection-leak check leaves them out)."""
        import redis

        def connected(conn: Any) -> None:  # the leak check knows it even if a test renames it
            with contextlib.suppress(Exception):
                own_port(conn._sock)
            conn.on_connect()

        return redis.Redis(
            host=info.host,
            port=info.port,
            db=info.db,
            password=info.password or None,
            username=info.username or None,
            ssl=info.ssl,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            redis_connect_func=connected,  # type: ignore[arg-type]  # called with the connection
            **{"client_name": OWN_CLIENT_NAME, **kwargs},
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
    def claim_database(self, info: RedisInfo, owner: str) -> RedisClaim:
        """Claim a database index (never 0) that is empty, so flushing it touches only our keys.

        The claim is a key ``pytest-commons:claim:<index>`` in database 0 holding who claimed
        it (host, boot, pid and its start time) and when it last said it was alive; it does not
        expire. A claim whose owner is proved dead (on this host: the pid is gone or is another
        process, or the machine rebooted; from another host: no heartbeat for
        ``CLAIM_STALE_SECONDS``) is taken over and its database, the dead run's leftovers,
        flushed. A live run's claim, and an unclaimed database holding keys, are never touched.
        """
        registry = self.client(info.with_db(0))
        try:
            try:
                count = int(str(registry.config_get("databases").get("databases", 16)))
            except Exception:  # CONFIG may be disabled on managed servers
                count = 16
            for index in range(count - 1, 0, -1):
                key = f"{CLAIM_KEY}:{index}"
                mine = claim_value(owner)
                if registry.set(key, mine, nx=True):
                    db = self.client(info.with_db(index))
                    try:
                        if db.dbsize() == 0:
                            return RedisClaim(self, info.with_db(index), owner, mine)
                    finally:
                        db.close()
                    compare_and_set(registry, key, mine, None)  # others' keys: not ours
                    continue
                raw = registry.get(key)
                held = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
                if held is None or not stamp_is_dead(held, CLAIM_STALE_SECONDS):
                    continue
                # a dead run's claim: take it over, then its leftovers are ours to flush
                if compare_and_set(registry, key, held, mine):
                    db = self.client(info.with_db(index))
                    try:
                        db.flushdb()
                    finally:
                        db.close()
                    return RedisClaim(self, info.with_db(index), owner, mine)
        finally:
            registry.close()
        raise ProbeRefused(
            f"no empty database index among {count} on {info.address} to claim; "
            "pytest-commons never flushes a database holding others' keys"
        )

    def reserve_kept(self, info: RedisInfo, nodeid: str) -> int:
        """``--keep-failed``: claim an empty database index for good for ``nodeid``'s keys (its
        claim names the test and never counts as dead, so no run takes it over)."""
        claim = self.claim_database(info, f"kept:{nodeid}")
        registry = self.client(info.with_db(0))
        try:
            kept = json.dumps({"kept": nodeid, "owner": claim.owner}, sort_keys=True)
            compare_and_set(registry, f"{CLAIM_KEY}:{claim.index}", claim.value, kept)
        finally:
            registry.close()
        return claim.index

    def keep_database(self, info: RedisInfo, index: int) -> None:
        """Move what database ``info.db`` holds to ``index`` (reserved, empty) and leave
        ``info.db`` empty: one ``SWAPDB``."""
        registry = self.client(info.with_db(0))
        try:
            registry.swapdb(info.db, index)
        finally:
            registry.close()

    def release_database(self, claim: RedisClaim) -> None:
        """Empty the claimed database and delete the claim, only while it is still ours."""
        claim.stop_heartbeat()
        db = self.client(claim.info)
        registry = self.client(claim.info.with_db(0))
        try:
            key = f"{CLAIM_KEY}:{claim.info.db}"
            if registry.get(key) == claim.value.encode():
                db.flushdb()
                compare_and_set(registry, key, claim.value, None)
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
                self.run_password,  # redis-server replaces its process title: not in `ps`
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )

    def docker_info(self, launch: DockerLaunch, host: str, port: int) -> RedisInfo:
        return RedisInfo(host=host, port=port, password=self.run_password)


# claims --------------------------------------------------------------------------------------
def claim_value(owner: str) -> str:
    """What a claim key holds: ``owner_stamp`` (run and worker, host, boot, pid and its start
    time, the time of its last heartbeat). The exact string is also the claim's token."""
    return json.dumps(owner_stamp(owner), sort_keys=True)


def compare_and_set(client: redis.Redis, key: str, expected: str, new: str | None) -> bool:
    """Set (or, with ``new=None``, delete) ``key`` only while it still holds ``expected``."""
    from redis.exceptions import WatchError

    with client.pipeline() as pipe:
        try:
            pipe.watch(key)  # type: ignore[no-untyped-call]
            if pipe.get(key) != expected.encode():
                pipe.unwatch()
                return False
            pipe.multi()
            if new is None:
                pipe.delete(key)
            else:
                pipe.set(key, new)
            pipe.execute()
        except WatchError:
            return False
    return True


class RedisClaim:
    """A claimed database index, refreshed by a heartbeat thread while the run lives."""

    def __init__(self, spec: RedisSpec, info: RedisInfo, owner: str, value: str) -> None:
        self.spec, self.info, self.owner, self.value = spec, info, owner, value
        self.lost = False  # someone proved us dead and took the index over (should not happen)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def index(self) -> int:
        return self.info.db

    def refresh(self) -> bool:
        """Renew the heartbeat; False if the claim is no longer ours."""
        with self._lock:
            if self.lost:
                return False
            new = claim_value(self.owner)
            client = self.spec.client(self.info.with_db(0))
            try:
                ok = compare_and_set(client, f"{CLAIM_KEY}:{self.index}", self.value, new)
            finally:
                client.close()
            if ok:
                self.value = new
            else:
                self.lost = True
            return ok

    def start_heartbeat(self, interval: float = CLAIM_HEARTBEAT_SECONDS) -> None:
        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    if not self.refresh():
                        return
                except Exception:  # the server is away for now (restart, pause): try again
                    continue

        self._thread = threading.Thread(target=beat, daemon=True, name="commons-redis-claim")
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def encode_command(*args: str) -> bytes:
    """One Redis command in RESP, for a plain socket (a password with spaces goes intact)."""
    out = f"*{len(args)}\r\n".encode()
    for arg in args:
        raw = arg.encode()
        out += b"$%d\r\n%s\r\n" % (len(raw), raw)
    return out

"""The docker backend: a container per service through testcontainers.

Ports are published on 127.0.0.1 only and the client connects through 127.0.0.1 (on a VM
that looks like a container, testcontainers would otherwise guess a gateway address).
testcontainers' Ryuk reaper is not used (its image may not be pullable): containers carry
labels with the run's id, are recorded the moment they exist, and the plugin's own reaper
removes them when pytest dies. Readiness is the service's own protocol probe, with the
container's log quoted when it exits or times out.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from pytest_commons.backends.base import AnySpec, Backend, wait_ready
from pytest_commons.core.host import free_port
from pytest_commons.core.run import Instance, RunContext
from pytest_commons.errors import BackendUnavailable, ServiceStartError, tail
from pytest_commons.plugin import progress as _progress

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

LABEL = "pytest-commons"
RUN_LABEL = "pytest-commons.run"
SERVICE_LABEL = "pytest-commons.service"
_PULLED: set[str] = set()
#: images whose pull failed in this process, with the reason (not tried again by this process)
_PULL_FAILED: dict[str, str] = {}
_PULL_LOCK = threading.Lock()
_CONFIGURED = False


def _configure_testcontainers() -> None:
    """Connect through 127.0.0.1 and never start Ryuk (we reap containers ourselves)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    from testcontainers.core.config import ConnectionMode
    from testcontainers.core.config import testcontainers_config as config

    if not os.environ.get("TC_HOST") and not os.environ.get("TESTCONTAINERS_HOST_OVERRIDE"):
        config.tc_host_override = "127.0.0.1"
    if not os.environ.get("TESTCONTAINERS_CONNECTION_MODE"):
        config.connection_mode_override = ConnectionMode.docker_host
    config.ryuk_disabled = True
    _CONFIGURED = True


def docker_engine_unreachable() -> str | None:
    """A cheap check before importing the Docker SDK (≈0.2 s of imports): does an engine answer?

    For a unix socket (the default, or ``DOCKER_HOST=unix://…``) this asks the engine's
    ``/_ping`` over the socket; other ``DOCKER_HOST`` schemes are left to the SDK. Returns why
    not, or None.
    """
    import socket

    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        return None
    path = host[len("unix://") :] if host else "/var/run/docker.sock"
    if not os.path.exists(path):
        return f"no Docker engine ({path} does not exist)"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = sock.recv(64).split(b"\r\n", 1)[0].decode("latin-1")
    except PermissionError:
        return f"no permission to use the Docker engine's socket {path} (not in the docker group?)"
    except OSError as exc:
        return f"no Docker engine answers on {path} ({exc.strerror or exc})"
    if " 200" not in status:
        return f"the Docker engine on {path} answered /_ping with {status!r}"
    return None


def docker_client() -> Any:
    import docker

    return docker.from_env(timeout=10)


class DockerBackend(Backend):
    """Containers through testcontainers; see the module docstring."""

    name = "docker"
    allow_pull = True  # the doctor command only looks

    def _image(self, spec: AnySpec) -> str:
        explicit = self.config.service(spec.name).explicit_image
        return explicit or spec.docker_image()  # the catalogue's, or the service's (MockServer)

    def unavailable(self, spec: AnySpec) -> BackendUnavailable | None:
        missing = docker_engine_unreachable()
        if missing:
            return BackendUnavailable(missing, "start Docker (dockerd), or set DOCKER_HOST")
        try:
            import testcontainers.core.container  # noqa: F401
        except ImportError:
            return BackendUnavailable(
                "testcontainers is not installed", 'pip install "pytest-commons[docker]"'
            )
        try:
            client = docker_client()
            client.ping()
        except Exception as exc:
            return BackendUnavailable(
                f"the Docker engine does not answer: {exc}",
                "start Docker (dockerd), or set DOCKER_HOST",
            )
        image = self._image(spec)
        try:
            return self._ensure_image(client, spec, image)
        finally:
            client.close()

    def _ensure_image(self, client: Any, spec: AnySpec, image: str) -> BackendUnavailable | None:
        import docker

        try:
            client.images.get(image)
            return None
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            return BackendUnavailable(f"cannot inspect image {image}: {exc}")
        if not self.allow_pull:
            return BackendUnavailable(
                f"image {image} is not present locally (a test run would try to pull it)",
                f"docker pull {image}, or set PYTEST_COMMONS_{spec.name.upper()}_IMAGE",
            )
        with _PULL_LOCK:
            if image in _PULLED:
                return None
            failed = _PULL_FAILED.get(image)
            if failed is None:
                # to the terminal, never into the captured output of the test that waits for it
                _progress.notice(f"commons: pulling image {image} for {spec.name} …")
                try:
                    client.images.pull(image)
                except Exception as exc:
                    # the engine's own words (an APIError's explanation), not the request URL
                    said = str(getattr(exc, "explanation", None) or exc).strip()
                    failed = (said.splitlines() or [type(exc).__name__])[0][:200]
                    _PULL_FAILED[image] = failed
                    # the notice above must not read as a pull under way
                    _progress.notice(f"commons: pulling image {image} failed: {failed}")
                else:
                    _PULLED.add(image)
                    return None
        return BackendUnavailable(
            f"image {image} is not present and cannot be pulled ({failed})",
            f"build or load it, or set PYTEST_COMMONS_{spec.name.upper()}_IMAGE to an "
            "image you have (from a clone of the pytest-commons repository or its "
            "sdist, `bash containers/build.sh` builds local test images)",
        )

    def _container(self, spec: AnySpec, image: str) -> tuple[DockerContainer, Any]:
        launch = spec.docker_launch(image)
        # the host port is chosen now, so that stop()/start() keep it and so that a server
        # that must advertise its address (Kafka) can be told: "{host_port}" in env values and
        # command items is replaced with it
        host_port = free_port()
        launch.env = {k: v.replace("{host_port}", str(host_port)) for k, v in launch.env.items()}
        if launch.command is not None:
            launch.command = [c.replace("{host_port}", str(host_port)) for c in launch.command]
        # one generic container for every service, driven by the spec's launch data (image,
        # port, environment, command): testcontainers' per-service classes are not used
        from testcontainers.core.container import DockerContainer as Generic

        container: DockerContainer = Generic(image)
        # readiness is the spec's own probe (fast, quotes the log when the container dies):
        # no testcontainers wait strategy
        if launch.command is not None:
            container.with_command(launch.command)
        for key, value in launch.env.items():
            container.with_env(key, value)
        # publish on 127.0.0.1 only
        container.ports = {str(launch.container_port): ("127.0.0.1", host_port)}  # type: ignore[dict-item]
        for port in [*launch.extra_ports, *launch.extra.get("extra_ports", [])]:
            container.ports[str(port)] = ("127.0.0.1", free_port())  # type: ignore[assignment]
        return container, launch

    def start(self, spec: AnySpec, ctx: RunContext) -> Instance:
        _configure_testcontainers()
        started = time.monotonic()
        image = self._image(spec)
        labels = {
            LABEL: "1",
            RUN_LABEL: ctx.run_id,
            SERVICE_LABEL: ctx.slot_name(spec.name),
            "pytest-commons.owner-pid": str(ctx.owner_pid),
        }
        (ctx.run_dir / "docker-used").touch()  # the reaper sweeps this run's labels
        # while this exists a container may be on its way (the engine finishes a create even
        # if we are killed mid-request): the reaper keeps sweeping for it
        creating = ctx.services_dir / f"{ctx.slot_name(spec.name)}.creating"
        creating.touch()
        try:
            if ctx.closing:
                raise ServiceStartError(spec.name, self.name, "the run is ending (interrupted)")
            for attempt in range(3):
                container, launch = self._container(spec, image)
                container.with_kwargs(labels=labels, **launch.extra.get("kwargs", {}))
                try:
                    container.start()  # create + start; the spec's readiness probe follows
                    break
                except Exception as exc:
                    self._remove_by_label(ctx.run_id, ctx.slot_name(spec.name))
                    if "already allocated" in str(exc) and attempt < 2:
                        continue  # another process took the host port we picked
                    raise ServiceStartError(
                        spec.name,
                        self.name,
                        f"could not start {image}: {exc}",
                        remedy="check `docker ps -a` and the Docker engine log",
                    ) from exc
            cid = container.get_container_id()
            if ctx.closing:  # the reaper marked the run while we created: its sweep may be past
                self._remove_by_label(ctx.run_id, ctx.slot_name(spec.name))
                raise ServiceStartError(spec.name, self.name, "the run is ending (interrupted)")
            inst = Instance(
                service=spec.name, backend=self.name, container_id=cid, extra={"image": image}
            )
            ctx.write(inst)
        finally:
            creating.unlink(missing_ok=True)
        try:
            api = container.get_docker_client().client.api

            def published(port: int) -> int:
                bound = api.port(cid, port)
                if bound:
                    return int(bound[0]["HostPort"])
                # a container that already exited has no bindings: the port we asked for (the
                # readiness wait below then reports the exit, with the log)
                return int(container.ports[str(port)][1])  # type: ignore[index]

            host_port = published(launch.container_port)
            for port in (launch.container_port, *launch.extra_ports):
                launch.published[port] = published(port)
            info = spec.docker_info(launch, "127.0.0.1", host_port)
            inst.info = info.to_dict()
            extra_ports = {str(p): published(p) for p in launch.extra.get("extra_ports", [])}
            if extra_ports:
                inst.extra["ports"] = extra_ports
            ctx.write(inst)
            wrapped = container.get_wrapped_container()

            def exited() -> str | None:
                wrapped.reload()
                if wrapped.status in ("exited", "dead"):
                    code = wrapped.attrs.get("State", {}).get("ExitCode")
                    return f"container exited with code {code}"
                return None

            def logs() -> str:
                try:
                    return tail(wrapped.logs(tail=40).decode("utf-8", "replace"))
                except Exception:
                    return ""

            inst.version = wait_ready(
                spec,
                self.name,
                info,
                self.config.start_timeout,
                exited=exited,
                log_tail=logs,
                log_path=f"docker logs {cid[:12]}",
            )
            inst.info = spec.docker_secure(info).to_dict()
        except BaseException:
            self._remove(cid)
            raise
        inst.ready = True
        inst.startup_seconds = round(time.monotonic() - started, 4)
        ctx.write(inst)
        return inst

    # cleanup and fault injection --------------------------------------------------------------
    def _remove(self, cid: str) -> None:
        from pytest_commons.core.cleanup import remove_container

        remove_container(cid)

    def _remove_by_label(self, run_id: str, service: str) -> None:
        try:
            client = docker_client()
            for c in client.containers.list(
                all=True, filters={"label": [f"{RUN_LABEL}={run_id}", f"{SERVICE_LABEL}={service}"]}
            ):
                c.remove(force=True, v=True)
            client.close()
        except Exception:
            pass

    def stop_only(self, instance: Instance) -> None:
        docker_client().containers.get(instance.container_id).stop(timeout=10)

    def restart(self, spec: AnySpec, instance: Instance, ctx: RunContext | None) -> Instance:
        container = docker_client().containers.get(instance.container_id)
        container.start()
        info = spec.info_from_dict(instance.info)
        instance.version = wait_ready(spec, self.name, info, self.config.start_timeout)
        return instance

    def pause(self, instance: Instance) -> None:
        docker_client().containers.get(instance.container_id).pause()

    def resume(self, instance: Instance) -> None:
        docker_client().containers.get(instance.container_id).unpause()

    def gone(self, instance: Instance) -> str | None:
        import docker

        try:
            container = docker_client().containers.get(instance.container_id)
        except docker.errors.NotFound:
            return "is gone (its container was removed)"
        except Exception:
            return None  # the engine does not answer: nothing can be told
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            return f"exited (its container's exit code: {code})"
        return None

    def logs(self, instance: Instance) -> str:
        try:
            raw = docker_client().containers.get(instance.container_id).logs()
            return str(raw.decode("utf-8", "replace"))
        except Exception:
            return ""

    def log_mark(self, instance: Instance) -> float:
        """The time now: the engine keeps a container's log (no call per test)."""
        return time.time()

    def logs_since(self, instance: Instance, mark: float) -> str:
        try:
            container = docker_client().containers.get(instance.container_id)
            raw = container.logs(since=datetime.datetime.fromtimestamp(mark))
            return str(raw.decode("utf-8", "replace"))
        except Exception:
            return ""

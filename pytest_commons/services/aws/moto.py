"""The local AWS engine: moto's own server (``moto[server]``) with two LocalStack conventions.

``python -m pytest_commons.services.aws.moto --port N`` (the local backend's launch) adds:

* the LocalStack convention that a 12-digit access key id *is* the account id, so each xdist
  worker works in its own account, also from subprocesses that only see ``AWS_*`` variables;
* ``POST /_pytest_commons/reset-account/<id>``: wipes one account's state (all services,
  all regions), unlike moto's global ``POST /moto-api/reset`` which would wipe every worker's.

``GET /_pytest_commons/info`` tells the fixtures that these extensions are there.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from pytest_commons.services.aws.spec import EXT_PREFIX, is_loopback

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def _account_from_access_key(original: Callable[[Any], str]) -> Callable[[Any], str]:
    """LocalStack's rule: a 12-digit access key id is the account id (SigV4 header or
    presigned query); anything else falls back to moto's own rules."""
    import re

    credential = re.compile(r"Credential=(\d{12})/")

    def get_current_account(self: Any) -> str:
        found = credential.search(self.headers.get("Authorization", "") or "")
        if found:
            return found.group(1)
        query = self.querystring.get("X-Amz-Credential") or [""]
        key = str(query[0]).split("/", 1)[0]
        if len(key) == 12 and key.isdigit():
            return key
        legacy = str((self.querystring.get("AWSAccessKeyId") or [""])[0])
        if len(legacy) == 12 and legacy.isdigit():
            return legacy
        return str(original(self))

    return get_current_account


def _reset_account(account_id: str) -> None:
    from moto.core.base_backend import BackendDict, backend_lock

    with backend_lock:
        seen: set[int] = set()
        for backends in list(BackendDict._instances):  # type: ignore[misc]
            if id(backends) in seen:
                continue
            seen.add(id(backends))
            account = dict.pop(backends, account_id, None)
            if account is not None:
                for backend in account.values():
                    _reset_backend(backend)


def _reset_backend(backend: Any) -> None:
    """``backend.reset()``, but for S3 only this account's objects: moto's S3Backend.reset
    also disposes every tracked key and multipart of EVERY account (class-level lists), so a
    reset for one xdist worker closed another worker's object buffers under it ("seek of
    closed file", HTTP 500). Here: what the S3 reset does per bucket, then the base reset."""
    s3 = sys.modules.get("moto.s3.models")  # not imported: no S3 backend exists yet
    if s3 is None or not isinstance(backend, s3.S3Backend):
        backend.reset()
        return
    for bucket in [*backend.buckets.values(), *getattr(backend, "table_buckets", {}).values()]:
        for key in bucket.keys.values():
            if isinstance(key, s3.FakeKey):
                key.dispose()
        for part in bucket.multiparts.values():
            part.dispose()
        s3.s3_backends.bucket_accounts.pop(bucket.name, None)
    super(s3.S3Backend, backend).reset()


def _wrap(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    import time

    import moto

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(EXT_PREFIX + "/"):
            return app(environ, start_response)
        status = "404 Not Found"
        body: dict[str, Any] = {"error": f"unknown path {path}"}
        if path == f"{EXT_PREFIX}/info":
            status, body = "200 OK", {"moto": moto.__version__, "account_reset": True}
        elif path.startswith(f"{EXT_PREFIX}/reset-account/"):
            account = path.rsplit("/", 1)[1]
            if environ.get("REQUEST_METHOD") != "POST":
                status, body = "405 Method Not Allowed", {"error": "POST to reset"}
            elif not (len(account) == 12 and account.isdigit()):
                status, body = "400 Bad Request", {"error": "the account id has 12 digits"}
            else:
                started = time.perf_counter()
                _reset_account(account)
                status, body = (
                    "200 OK",
                    {"account": account, "seconds": time.perf_counter() - started},
                )
        data = json.dumps(body).encode()
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]

    return application


def serve(host: str, port: int) -> None:
    """Run moto's server with the pytest-commons extensions (blocks until SIGTERM/SIGINT)."""
    os.environ.setdefault("MOTO_PORT", str(port))
    from moto.core.responses import BaseResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    BaseResponse.get_current_account = _account_from_access_key(  # type: ignore[method-assign,assignment]
        BaseResponse.get_current_account
    )
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, _wrap(app), threaded=True)

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"pytest-commons moto server on http://{host}:{server.port}", flush=True)
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pytest_commons.services.aws.moto",
        description="moto server with pytest-commons extensions",
    )
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=0)
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        parser.error("this server binds loopback addresses only")
    serve(args.host, args.port)


if __name__ == "__main__":
    main()

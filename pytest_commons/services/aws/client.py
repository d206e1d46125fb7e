"""The object the ``aws`` fixture hands out, and the per-worker state behind it.

Isolation, in short (details in ``docs/aws.md``):

* every xdist worker works in its own AWS *account*: its access key id is a 12-digit account
  id, which LocalStack and the plugin's moto launcher both read as the account;
* on the local moto server the plugin started, the worker's account is wiped after each test
  (``POST /_pytest_commons/reset-account/<id>``, ≈2 ms), so nothing another worker does is
  touched — moto's own ``/moto-api/reset`` is global and is never called;
* on other endpoints (external, LocalStack in Docker) the fixture deletes what its clients
  created during the test (buckets emptied first, queues, tables, topics, secrets). Names
  that do not carry this worker's namespace are only deleted when the create call proves the
  resource is new (S3 buckets are checked with HeadBucket first; SQS queues and SNS topics,
  whose create calls are idempotent, only when named by :meth:`Aws.name`).

boto3 and aioboto3 are imported lazily.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_commons.services.aws.spec import AwsInfo, AwsSpec

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["Aws", "AwsWorker", "TrackedResource", "worker_account"]

#: The operations whose results are tracked for deletion on endpoints without account reset.
CREATE_OPERATIONS = {
    "s3": "CreateBucket",
    "sqs": "CreateQueue",
    "dynamodb": "CreateTable",
    "sns": "CreateTopic",
    "secretsmanager": "CreateSecret",
}
# deletion order: what can reference others goes first
DELETE_ORDER = ("secretsmanager", "sns", "sqs", "dynamodb", "s3")
SECRET_KEY = "test"


def worker_account(run_id: str, worker_id: str) -> str:
    """A 12-digit account id for one worker of one run (never LocalStack's or moto's default)."""
    digest = int(hashlib.sha256(f"{run_id}:{worker_id}".encode()).hexdigest(), 16)
    return f"7{digest % 10**11:011d}"


@dataclass
class TrackedResource:
    """A resource a test's client created, to delete at the end of the test."""

    service: str
    name: str  # bucket / table name, queue URL, topic or secret ARN


@dataclass
class AwsWorker:
    """Per-process (xdist worker) state: account, credentials, cached clients, tracking."""

    spec: AwsSpec
    info: AwsInfo
    account_id: str
    namespace: str
    reset_accounts: bool
    clients: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    tracked: list[TrackedResource] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _session: Any = None

    @property
    def strategy(self) -> str:
        """``account-reset`` (local moto) or ``tracked-deletion`` (everything else)."""
        return "account-reset" if self.reset_accounts else "tracked-deletion"

    def session(self) -> Any:
        """A boto3 Session with this worker's explicit credentials (never ~/.aws)."""
        if self._session is None:
            import boto3

            self._session = boto3.session.Session(
                aws_access_key_id=self.info.access_key_id,
                aws_secret_access_key=self.info.secret_access_key,
                region_name=self.info.region,
            )
        return self._session

    def config(self, **overrides: Any) -> Any:
        from botocore.config import Config

        options: dict[str, Any] = {
            "connect_timeout": 5,
            "read_timeout": 30,
            "retries": {"max_attempts": 2, "mode": "standard"},
            "s3": {"addressing_style": "path"},
        }
        options.update(overrides)
        return Config(**options)

    def client(self, name: str) -> Any:
        client = self.clients.get(name)
        if client is None:
            client = self.session().client(
                name, endpoint_url=self.info.endpoint_url, config=self.config()
            )
            self.watch(client)
            self.clients[name] = client
        return client

    def resource(self, name: str) -> Any:
        resource = self.resources.get(name)
        if resource is None:
            resource = self.session().resource(
                name, endpoint_url=self.info.endpoint_url, config=self.config()
            )
            self.watch(resource.meta.client)
            self.resources[name] = resource
        return resource

    # tracking -----------------------------------------------------------------------------
    def watch(self, client: Any) -> None:
        """Record what ``client`` creates, when this endpoint has no per-account reset."""
        if self.reset_accounts:
            return
        service = client.meta.service_model.service_name
        operation = CREATE_OPERATIONS.get(service)
        if operation is None:
            return
        events = client.meta.events
        events.register(
            f"before-parameter-build.{service}.{operation}", self._before_create(client, service)
        )
        events.register(f"after-call.{service}.{operation}", self._after_create(service))

    def owns_name(self, name: str) -> bool:
        return self.namespace in name

    def _before_create(self, client: Any, service: str) -> Callable[..., None]:
        def handler(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            name = str(
                params.get("Bucket")
                or params.get("QueueName")
                or params.get("TableName")
                or params.get("Name")
                or ""
            )
            track = True
            if not self.owns_name(name):
                if service in ("sqs", "sns"):
                    track = False  # create is idempotent: it may return someone else's
                elif service == "s3":
                    track = not _bucket_exists(client, name)
            context["pytest_commons_track"] = (track, name)

        return handler

    def _after_create(self, service: str) -> Callable[..., None]:
        def handler(
            http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
        ) -> None:
            track, name = context.get("pytest_commons_track", (False, ""))
            if not track or getattr(http_response, "status_code", 500) >= 300:
                return
            ident = {
                "sqs": parsed.get("QueueUrl"),
                "sns": parsed.get("TopicArn"),
                "secretsmanager": parsed.get("ARN"),
            }.get(service) or name
            if ident:
                self.tracked.append(TrackedResource(service, str(ident)))

        return handler

    def keep(self, nodeid: str) -> str:
        """``--keep-failed``: leave what the test made where it is and return its account.
        With the plugin's dummy per-worker credentials the worker moves on to a fresh account
        for its next tests (so the kept resources neither reach them nor get reset); with
        credentials from the URL nothing is deleted (names the fixture gave do not collide)."""
        kept = self.account_id
        self.tracked.clear()
        if self.info.access_key_id == kept:
            fresh = worker_account(kept, nodeid)
            self.account_id = fresh
            self.info = self.info.with_credentials(fresh, self.info.secret_access_key)
            self.clients.clear()
            self.resources.clear()
            self._session = None
        return kept

    def cleanup(self) -> float:
        """Make the account clean for the next test; returns the seconds it took."""
        started = time.perf_counter()
        if self.reset_accounts:
            self.spec.reset_account(self.info, self.account_id)
            self.tracked.clear()
            return time.perf_counter() - started
        tracked, self.tracked = self.tracked, []
        problems: list[str] = []
        order = {svc: i for i, svc in enumerate(DELETE_ORDER)}
        for res in sorted(reversed(tracked), key=lambda r: order.get(r.service, 0)):
            try:
                _delete(self.client(res.service), res)
            except Exception as exc:
                if not _is_not_found(exc):
                    problems.append(f"{res.service} {res.name}: {type(exc).__name__}: {exc}")
        if problems:
            warnings.warn(
                "pytest-commons aws: could not delete what the test created:\n  "
                + "\n  ".join(problems),
                RuntimeWarning,
                stacklevel=2,
            )
        return time.perf_counter() - started


def _bucket_exists(client: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=name)
    except ClientError:
        return False  # 404, or 403 (someone else's: the create will fail anyway)
    return True


def _is_not_found(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return any(word in code for word in ("NotFound", "NoSuch", "NonExistent"))


def _delete(client: Any, res: TrackedResource) -> None:
    if res.service == "s3":
        _empty_bucket(client, res.name)
        client.delete_bucket(Bucket=res.name)
    elif res.service == "sqs":
        client.delete_queue(QueueUrl=res.name)
    elif res.service == "dynamodb":
        client.delete_table(TableName=res.name)
    elif res.service == "sns":
        client.delete_topic(TopicArn=res.name)
    elif res.service == "secretsmanager":
        client.delete_secret(SecretId=res.name, ForceDeleteWithoutRecovery=True)


def _empty_bucket(client: Any, bucket: str) -> None:
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
    # the first page of what is left, until nothing is: paging on while deleting skipped
    # objects past the first 1000 on moto (its next-page marker named a deleted key)
    while True:
        page = client.list_object_versions(Bucket=bucket)
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if not objects:
            return
        answer = client.delete_objects(
            Bucket=bucket, Delete={"Objects": objects[:1000], "Quiet": True}
        )
        errors = answer.get("Errors") or []
        if errors:  # each round deletes something or says why not: no endless loop
            first = errors[0]
            raise RuntimeError(
                f"delete_objects refused {len(errors)} key(s), first {first.get('Key')!r}: "
                f"{first.get('Code')}: {first.get('Message')}"
            )


class _AsyncClient:
    """``async with aws.aclient("s3") as s3:`` — an aiobotocore client on the endpoint."""

    def __init__(self, worker: AwsWorker, creator: Any) -> None:
        self._worker, self._creator = worker, creator

    async def __aenter__(self) -> Any:
        client = await self._creator.__aenter__()
        self._worker.watch(client)
        return client

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._creator.__aexit__(exc_type, exc, tb)


_NAME_OK = re.compile(r"[^a-z0-9-]+")


class Aws:
    """One test's view of the AWS endpoint: credentials, clients and resource helpers.

    Everything created through :meth:`client`, :meth:`resource`, :meth:`aclient` and the
    helpers is gone before the next test (see the module docstring for how).
    """

    def __init__(self, worker: AwsWorker, test_name: str = "") -> None:
        self._worker = worker
        self.test_name = test_name

    # connection ---------------------------------------------------------------------------
    @property
    def info(self) -> AwsInfo:
        """Connection info with this worker's credentials (repr masks the secret)."""
        return self._worker.info

    @property
    def endpoint_url(self) -> str:
        return self._worker.info.endpoint_url

    @property
    def region_name(self) -> str:
        return self._worker.info.region

    @property
    def aws_access_key_id(self) -> str:
        """This worker's access key id: its 12-digit account id on LocalStack and local moto."""
        return self._worker.info.access_key_id

    @property
    def aws_secret_access_key(self) -> str:
        return self._worker.info.secret_access_key

    @property
    def account_id(self) -> str:
        return self._worker.account_id

    @property
    def isolation(self) -> str:
        """``account-reset`` or ``tracked-deletion``."""
        return self._worker.strategy

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point an AWS SDK/CLI (or localstack-client) here."""
        info = self._worker.info
        return {
            "AWS_ENDPOINT_URL": info.endpoint_url,
            "AWS_DEFAULT_REGION": info.region,
            "AWS_REGION": info.region,
            "AWS_ACCESS_KEY_ID": info.access_key_id,
            "AWS_SECRET_ACCESS_KEY": info.secret_access_key,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "LOCALSTACK_HOST": info.address,
        }

    def __repr__(self) -> str:
        return (
            f"Aws(endpoint_url={self.endpoint_url!r}, region_name={self.region_name!r}, "
            f"account_id={self.account_id!r}, aws_access_key_id="
            f"{self.aws_access_key_id!r}, aws_secret_access_key='***', "
            f"isolation={self.isolation!r})"
        )

    __str__ = __repr__

    # clients ------------------------------------------------------------------------------
    def session(self) -> Any:
        """A ``boto3.session.Session`` with explicit dummy credentials and the region."""
        return self._worker.session()

    def client(self, name: str, **kwargs: Any) -> Any:
        """A boto3 client on the endpoint (the same object for the same name; with kwargs,
        a new client each call, e.g. ``config=Config(...)``)."""
        if not kwargs:
            return self._worker.client(name)
        kwargs.setdefault("config", self._worker.config())
        client = self.session().client(name, endpoint_url=self.endpoint_url, **kwargs)
        self._worker.watch(client)
        return client

    def resource(self, name: str) -> Any:
        """A boto3 resource (``s3``, ``dynamodb``, ``sqs``, ``sns``) on the endpoint."""
        return self._worker.resource(name)

    def async_session(self) -> Any:
        """An ``aioboto3.Session`` with the same explicit credentials and region."""
        import aioboto3

        info = self._worker.info
        return aioboto3.Session(
            aws_access_key_id=info.access_key_id,
            aws_secret_access_key=info.secret_access_key,
            region_name=info.region,
        )

    def aclient(self, name: str, **kwargs: Any) -> Any:
        """``async with aws.aclient("s3") as s3: ...`` — an aioboto3 client on the endpoint."""
        kwargs.setdefault("config", self._worker.config())
        creator = self.async_session().client(name, endpoint_url=self.endpoint_url, **kwargs)
        return _AsyncClient(self._worker, creator)

    # names and resources ------------------------------------------------------------------
    def name(self, prefix: str = "r") -> str:
        """A name unique to this run, worker and call: ``<prefix>-<namespace>-<n>`` (valid
        for buckets, queues, tables, topics and secrets)."""
        clean = _NAME_OK.sub("-", prefix.lower()).strip("-") or "r"
        return f"{clean[:30]}-{self._worker.namespace}-{next(self._worker.counter)}"

    def bucket(self, prefix: str = "b", **kwargs: Any) -> str:
        """Create a uniquely named S3 bucket; returns its name."""
        name = self.name(prefix)
        params: dict[str, Any] = {"Bucket": name, **kwargs}
        if self.region_name != "us-east-1" and "CreateBucketConfiguration" not in params:
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region_name}
        self.client("s3").create_bucket(**params)
        return name

    def queue(self, prefix: str = "q", fifo: bool = False, **attrs: Any) -> str:
        """Create a uniquely named SQS queue (attributes as keyword arguments, e.g.
        ``VisibilityTimeout=5``); returns its URL."""
        name = self.name(prefix)
        attributes = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in attrs.items()
        }
        if fifo:
            name += ".fifo"
            attributes["FifoQueue"] = "true"
        return str(
            self.client("sqs").create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        )

    def table(
        self,
        name: str | None = None,
        key_schema: list[dict[str, str]] | None = None,
        attribute_definitions: list[dict[str, str]] | None = None,
        *,
        timeout: float = 30,
        **kwargs: Any,
    ) -> str:
        """Create a DynamoDB table (default: hash key ``pk`` of type S, on-demand billing) and
        wait until it is ACTIVE; returns its name."""
        name = name or self.name("t")
        key_schema = key_schema or [{"AttributeName": "pk", "KeyType": "HASH"}]
        if attribute_definitions is None:
            attribute_definitions = [
                {"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in key_schema
            ]
        kwargs.setdefault("BillingMode", "PAY_PER_REQUEST")
        client = self.client("dynamodb")
        client.create_table(
            TableName=name,
            KeySchema=key_schema,
            AttributeDefinitions=attribute_definitions,
            **kwargs,
        )
        deadline = time.monotonic() + timeout
        delay = 0.01
        while True:
            status = client.describe_table(TableName=name)["Table"]["TableStatus"]
            if status == "ACTIVE":
                return name
            if time.monotonic() > deadline:
                raise TimeoutError(f"DynamoDB table {name} still {status} after {timeout:g} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def topic(self, prefix: str = "t", **attrs: Any) -> str:
        """Create a uniquely named SNS topic; returns its ARN."""
        attributes = {key: str(value) for key, value in attrs.items()}
        return str(
            self.client("sns").create_topic(Name=self.name(prefix), Attributes=attributes)[
                "TopicArn"
            ]
        )

    def receive(
        self,
        queue_url: str,
        n: int = 1,
        timeout: float = 10,
        *,
        delete: bool = False,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Long-poll ``queue_url`` until ``n`` messages arrived (returns them) or ``timeout``
        seconds passed (fails the test, listing what did arrive). ``delete=True`` deletes
        each message after receiving it."""
        import pytest

        client = self.client("sqs")
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                bodies = (
                    "\n".join(f"  {i}: {m.get('Body', '')[:200]!r}" for i, m in enumerate(got))
                    or "  (nothing)"
                )
                pytest.fail(
                    f"aws.receive: expected {n} message(s) from {queue_url} within "
                    f"{timeout:g} s, got {len(got)}:\n{bodies}",
                    pytrace=False,
                )
            params = {"AttributeNames": ["All"], "MessageAttributeNames": ["All"], **kwargs}
            response = client.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(10, n - len(got))),
                WaitTimeSeconds=min(20, max(1, math.floor(remaining))),
                **params,
            )
            for message in response.get("Messages", []):
                got.append(message)
                if delete:
                    client.delete_message(
                        QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        return got

    # lifecycle ----------------------------------------------------------------------------
    def cleanup(self, keep: bool = False) -> float:
        """Remove what the test created (called by the fixture at teardown); ``keep``
        (``--keep-failed`` and the test failed): leave it, in an account of its own."""
        if keep:
            self._worker.keep(self.test_name)
            return 0.0
        return self._worker.cleanup()

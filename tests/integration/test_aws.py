"""AWS against a real endpoint (moto server locally): S3, SQS, DynamoDB, SNS→SQS, Secrets
Manager through the ``aws`` fixture, and the isolation strategies."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from pytest_commons.core.registry import ServiceHandle
from pytest_commons.services.aws.client import Aws, AwsWorker, worker_account
from pytest_commons.services.aws.spec import AwsInfo, AwsSpec


def _names(buckets: dict[str, Any]) -> list[str]:
    return [b["Name"] for b in buckets["Buckets"]]


# S3 ------------------------------------------------------------------------------------------
def test_s3_put_get_list(aws: Aws) -> None:
    s3 = aws.client("s3")
    bucket = aws.bucket("data")
    for key in ("a/1.txt", "a/2.txt", "b/3.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert s3.get_object(Bucket=bucket, Key="a/2.txt")["Body"].read() == b"a/2.txt"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/1.txt", "a/2.txt"]
    assert bucket in _names(s3.list_buckets())


def test_s3_multipart_upload(aws: Aws) -> None:
    s3 = aws.client("s3")
    bucket = aws.bucket()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big")
    parts = []
    chunks = [b"a" * (5 * 1024 * 1024), b"b" * (5 * 1024 * 1024), b"tail"]
    for number, chunk in enumerate(chunks, start=1):
        part = s3.upload_part(
            Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=number, Body=chunk
        )
        parts.append({"ETag": part["ETag"], "PartNumber": number})
    s3.complete_multipart_upload(
        Bucket=bucket, Key="big", UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
    )
    head = s3.head_object(Bucket=bucket, Key="big")
    assert head["ContentLength"] == sum(map(len, chunks))
    assert head["ETag"].strip('"').endswith("-3")
    tail = s3.get_object(Bucket=bucket, Key="big", Range="bytes=-4")["Body"].read()
    assert tail == b"tail"


def test_s3_presigned_get_over_http(aws: Aws) -> None:
    s3 = aws.client("s3")
    bucket = aws.bucket()
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"id,name\n1,x\n")
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "report.csv"}, ExpiresIn=60
    )
    assert url.startswith(aws.endpoint_url)
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.content == b"id,name\n1,x\n"
    missing = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "nope"})
    assert httpx.get(missing, timeout=5).status_code == 404


def test_s3_resource_api(aws: Aws) -> None:
    bucket = aws.resource("s3").Bucket(aws.bucket())
    bucket.put_object(Key="k", Body=b"v")
    assert [o.key for o in bucket.objects.all()] == ["k"]
    assert aws.resource("s3") is aws.resource("s3")


# SQS -----------------------------------------------------------------------------------------
def test_sqs_send_receive_delete(aws: Aws) -> None:
    sqs = aws.client("sqs")
    url = aws.queue("jobs")
    for i in range(3):
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps({"n": i}),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "job"}},
        )
    messages = aws.receive(url, 3, timeout=10)
    assert sorted(json.loads(m["Body"])["n"] for m in messages) == [0, 1, 2]
    assert messages[0]["MessageAttributes"]["kind"]["StringValue"] == "job"
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    empty = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
    assert empty.get("Messages", []) == []


def test_sqs_visibility_timeout(aws: Aws) -> None:
    sqs = aws.client("sqs")
    url = aws.queue("vis", VisibilityTimeout=30)
    sqs.send_message(QueueUrl=url, MessageBody="once")
    first = aws.receive(url, 1)[0]
    # invisible while being processed
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    # giving it back makes it visible again, with a higher receive count
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    again = aws.receive(url, 1, timeout=5)[0]
    assert again["Body"] == "once"
    assert again["MessageId"] == first["MessageId"]
    assert int(again["Attributes"]["ApproximateReceiveCount"]) == 2


def test_sqs_fifo_queue(aws: Aws) -> None:
    sqs = aws.client("sqs")
    url = aws.queue("orders", fifo=True, ContentBasedDeduplication=True)
    assert url.endswith(".fifo")
    for body in ("1", "2", "2"):  # the duplicate is dropped
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    got = aws.receive(url, 2, delete=True)
    assert [m["Body"] for m in got] == ["1", "2"]


def test_receive_fails_listing_what_arrived(aws: Aws) -> None:
    url = aws.queue()
    aws.client("sqs").send_message(QueueUrl=url, MessageBody="only-one")
    with pytest.raises(pytest.fail.Exception) as failure:
        aws.receive(url, 2, timeout=1.5)
    text = str(failure.value)
    assert "expected 2 message(s)" in text
    assert "got 1" in text
    assert "'only-one'" in text


# DynamoDB ------------------------------------------------------------------------------------
def test_dynamodb_put_get_query_conditional_update(aws: Aws) -> None:
    ddb = aws.client("dynamodb")
    table = aws.table(
        key_schema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    for sk in ("2024-01", "2024-02", "2025-01"):
        ddb.put_item(
            TableName=table, Item={"pk": {"S": "user#1"}, "sk": {"S": sk}, "version": {"N": "1"}}
        )
    item = ddb.get_item(TableName=table, Key={"pk": {"S": "user#1"}, "sk": {"S": "2024-02"}})
    assert item["Item"]["version"] == {"N": "1"}
    found = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :y)",
        ExpressionAttributeValues={":p": {"S": "user#1"}, ":y": {"S": "2024"}},
    )
    assert [i["sk"]["S"] for i in found["Items"]] == ["2024-01", "2024-02"]

    key = {"pk": {"S": "user#1"}, "sk": {"S": "2025-01"}}
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET version = :new",
        ConditionExpression="version = :old",
        ExpressionAttributeValues={":old": {"N": "1"}, ":new": {"N": "2"}},
    )
    with pytest.raises(ClientError) as stale:
        ddb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET version = :new",
            ConditionExpression="version = :old",
            ExpressionAttributeValues={":old": {"N": "1"}, ":new": {"N": "3"}},
        )
    assert stale.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(TableName=table, Item=key, ConditionExpression="attribute_not_exists(pk)")
    assert ddb.get_item(TableName=table, Key=key)["Item"]["version"] == {"N": "2"}


def test_dynamodb_resource_table(aws: Aws) -> None:
    table = aws.resource("dynamodb").Table(aws.table())
    table.put_item(Item={"pk": "a", "n": 1})
    assert table.get_item(Key={"pk": "a"})["Item"] == {"pk": "a", "n": 1}


# SNS → SQS -----------------------------------------------------------------------------------
def test_sns_fans_out_to_sqs(aws: Aws) -> None:
    sns, sqs = aws.client("sns"), aws.client("sqs")
    topic = aws.topic("events")
    queues = [aws.queue("sub-a"), aws.queue("sub-b")]
    for url in queues:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(
            TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
        )
    sns.publish(TopicArn=topic, Message="order-created")
    for url in queues:
        assert [m["Body"] for m in aws.receive(url, 1)] == ["order-created"]


# Secrets Manager -----------------------------------------------------------------------------
def test_secrets_create_get_rotate_version(aws: Aws) -> None:
    sm = aws.client("secretsmanager")
    name = aws.name("db-password")
    created = sm.create_secret(Name=name, SecretString="v1")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"
    sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["AWSPENDING"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"
    pending = sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert pending["SecretString"] == "v2"
    sm.update_secret_version_stage(
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=pending["VersionId"],
        RemoveFromVersionId=created["VersionId"],
    )
    # moto 5.2 keeps serving the old default version to a stage-less GetSecretValue after
    # UpdateSecretVersionStage, so ask for the stage explicitly
    current = sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    assert current["SecretString"] == "v2"
    previous = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == "v1"
    # a plain put makes a new AWSCURRENT version
    sm.put_secret_value(SecretId=name, SecretString="v3")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v3"
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert len(versions) == 3


# isolation -----------------------------------------------------------------------------------
@pytest.mark.parametrize("round_", [1, 2])
def test_fixed_names_are_fresh_in_every_test(aws: Aws, round_: int) -> None:
    if aws.isolation != "account-reset":
        pytest.skip("the endpoint has no per-account reset (tracked deletion is used)")
    s3, sqs, ddb = aws.client("s3"), aws.client("sqs"), aws.client("dynamodb")
    assert _names(s3.list_buckets()) == []
    assert sqs.list_queues().get("QueueUrls", []) == []
    assert ddb.list_tables()["TableNames"] == []
    # fixed names, as application code would use: a leftover would make these fail
    s3.create_bucket(Bucket="pytest-commons-fixed-bucket")
    s3.put_object(Bucket="pytest-commons-fixed-bucket", Key="k", Body=str(round_).encode())
    sqs.create_queue(QueueName="fixed-queue")
    aws.table("fixed-table")
    aws.client("secretsmanager").create_secret(Name="fixed-secret", SecretString="s")


def _other_account(aws: Aws, aws_service: ServiceHandle[AwsInfo], worker: str) -> AwsWorker:
    """Another (pretend) xdist worker's account on the same server."""
    key = worker_account("another-run", worker)
    return AwsWorker(
        spec=aws._worker.spec,
        info=aws_service.info.with_credentials(key, "test"),
        account_id=key,
        namespace="other",
        reset_accounts=True,
    )


def test_reset_touches_only_this_workers_account(
    aws: Aws, aws_service: ServiceHandle[AwsInfo]
) -> None:
    if aws.isolation != "account-reset":
        pytest.skip("the endpoint has no per-account reset (tracked deletion is used)")
    other = _other_account(aws, aws_service, "gw7")
    try:
        other.client("sqs").create_queue(QueueName="other-workers-queue")
        other.client("s3").create_bucket(Bucket="other-workers-bucket")
        mine = aws.queue()
        assert other.client("sqs").list_queues()["QueueUrls"][0].endswith("other-workers-queue")
        assert aws.client("sqs").list_queues()["QueueUrls"] == [mine]
        before = time.perf_counter()
        seconds = aws.cleanup()
        assert 0 <= seconds <= time.perf_counter() - before, "cleanup() returns its duration"
        assert aws.client("sqs").list_queues().get("QueueUrls", []) == []
        assert len(other.client("sqs").list_queues()["QueueUrls"]) == 1
        assert _names(other.client("s3").list_buckets()) == ["other-workers-bucket"]
        # the account is the access key: also from a fresh client built from the env
        assert aws.client("sts").get_caller_identity()["Account"] == aws.account_id
    finally:
        other.cleanup()
    assert other.client("sqs").list_queues().get("QueueUrls", []) == []


def test_reset_leaves_another_accounts_s3_objects_readable(
    aws: Aws, aws_service: ServiceHandle[AwsInfo]
) -> None:
    """moto's own S3 reset disposes the object buffers of every account; ours only this
    account's: another worker's object and half-done multipart upload survive our reset."""
    if aws.isolation != "account-reset":
        pytest.skip("the endpoint has no per-account reset (tracked deletion is used)")
    other = _other_account(aws, aws_service, "gw6")
    s3 = other.client("s3")
    try:
        s3.create_bucket(Bucket="other-workers-objects")
        s3.put_object(Bucket="other-workers-objects", Key="kept", Body=b"still here")
        upload = s3.create_multipart_upload(Bucket="other-workers-objects", Key="big")
        part = s3.upload_part(
            Bucket="other-workers-objects",
            Key="big",
            UploadId=upload["UploadId"],
            PartNumber=1,
            Body=b"x" * 1024,
        )
        aws.client("s3").create_bucket(Bucket="my-bucket")
        aws.client("s3").put_object(Bucket="my-bucket", Key="mine", Body=b"mine")
        aws.cleanup()  # resets this worker's account only
        got = s3.get_object(Bucket="other-workers-objects", Key="kept")["Body"].read()
        assert got == b"still here"
        s3.complete_multipart_upload(
            Bucket="other-workers-objects",
            Key="big",
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
        )
        big = s3.get_object(Bucket="other-workers-objects", Key="big")["Body"].read()
        assert big == b"x" * 1024
        assert _names(aws.client("s3").list_buckets()) == []
    finally:
        other.cleanup()


def test_tracked_deletion_removes_only_what_was_created(
    aws_service: ServiceHandle[AwsInfo],
) -> None:
    """The strategy used on external endpoints, run against the real server."""
    spec = aws_service.spec
    assert isinstance(spec, AwsSpec)
    account = worker_account("tracked", "gw0")
    worker = AwsWorker(
        spec=spec,
        info=aws_service.info.with_credentials(account, "test"),
        account_id=account,
        namespace="pctrk",
        reset_accounts=False,
    )
    view = Aws(worker)
    outsider = AwsWorker(
        spec=spec, info=worker.info, account_id=account, namespace="x", reset_accounts=True
    )  # untracked client in the same account
    try:
        outsider.client("s3").create_bucket(Bucket="pre-existing-bucket")
        outsider.client("sqs").create_queue(QueueName="pre-existing-queue")
        s3 = view.client("s3")
        # us-east-1 answers 200 to re-creating your own bucket: HeadBucket keeps it untracked
        s3.create_bucket(Bucket="pre-existing-bucket")
        view.client("sqs").create_queue(QueueName="pre-existing-queue")  # idempotent
        bucket = view.bucket()
        s3.put_object(Bucket=bucket, Key="a", Body=b"1")
        s3.create_multipart_upload(Bucket=bucket, Key="unfinished")
        versioned = view.bucket("ver")
        s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=versioned, Key="v", Body=b"1")
        s3.put_object(Bucket=versioned, Key="v", Body=b"2")
        s3.create_bucket(Bucket="user-named-bucket")
        view.queue()
        view.table()
        view.topic()
        view.client("secretsmanager").create_secret(Name=view.name("sec"), SecretString="x")
        assert sorted(r.service for r in worker.tracked) == [
            "dynamodb",
            "s3",
            "s3",
            "s3",
            "secretsmanager",
            "sns",
            "sqs",
        ]
        assert "pre-existing-bucket" not in [r.name for r in worker.tracked]
        before = time.perf_counter()
        seconds = view.cleanup()
        assert 0 <= seconds <= time.perf_counter() - before, "cleanup() returns its duration"
        assert _names(s3.list_buckets()) == ["pre-existing-bucket"]
        assert [u.rsplit("/", 1)[1] for u in view.client("sqs").list_queues()["QueueUrls"]] == [
            "pre-existing-queue"
        ]
        assert view.client("dynamodb").list_tables()["TableNames"] == []
        assert view.client("sns").list_topics()["Topics"] == []
        assert view.client("secretsmanager").list_secrets()["SecretList"] == []
    finally:
        spec.reset_account(aws_service.info, account)


# credentials, env, other clients ---------------------------------------------------------------
def test_repr_masks_secret_and_credentials_are_dummy(aws: Aws) -> None:
    text = repr(aws)
    assert "aws_secret_access_key='***'" in text
    assert aws.aws_secret_access_key not in text.replace("'***'", "")
    assert aws.aws_access_key_id == aws.account_id
    assert len(aws.account_id) == 12
    assert aws.region_name == "us-east-1"
    assert aws.endpoint_url.startswith("http://127.0.0.1:")
    assert aws.session().get_credentials().access_key == aws.aws_access_key_id


def test_env_reaches_the_endpoint_from_a_subprocess(aws: Aws) -> None:
    bucket = aws.bucket("sub")
    code = (
        "import boto3; s3 = boto3.client('s3');"
        f"s3.put_object(Bucket={bucket!r}, Key='from-child', Body=b'hi');"
        "print(boto3.client('sts').get_caller_identity()['Account'])"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **aws.env}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == aws.account_id
    assert aws.client("s3").get_object(Bucket=bucket, Key="from-child")["Body"].read() == b"hi"


def test_aws_environ_for_in_process_code(aws_environ: dict[str, str], aws: Aws) -> None:
    import boto3

    url = aws.queue("env")
    client = boto3.client("sqs")  # no endpoint or keys given: all from the environment
    assert client.list_queues()["QueueUrls"] == [url]
    assert aws_environ["AWS_ENDPOINT_URL"] == aws.endpoint_url


def test_localstack_client_session(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    from localstack_client.session import Session

    bucket = aws.bucket("ls")
    # by endpoint: $AWS_ENDPOINT_URL is read when the Session is created
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.endpoint_url)
    session = Session(
        aws_access_key_id=aws.aws_access_key_id,
        aws_secret_access_key=aws.aws_secret_access_key,
        region_name=aws.region_name,
    )
    assert bucket in _names(session.client("s3").list_buckets())
    # by host: localstack_host (or $LOCALSTACK_HOST) = aws.env["LOCALSTACK_HOST"]
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    session = Session(
        aws_access_key_id=aws.aws_access_key_id,
        region_name=aws.region_name,
        localstack_host=aws.env["LOCALSTACK_HOST"],
    )
    assert bucket in _names(session.client("s3").list_buckets())


def test_async_client(aws: Aws) -> None:
    bucket = aws.bucket("async")

    async def main() -> bytes:
        async with aws.aclient("s3") as s3:
            await s3.put_object(Bucket=bucket, Key="k", Body=b"async-body")
            response = await s3.get_object(Bucket=bucket, Key="k")
            async with response["Body"] as stream:
                return bytes(await stream.read())

    assert asyncio.run(main()) == b"async-body"


def test_service_handle(aws_service: ServiceHandle[AwsInfo]) -> None:
    assert aws_service.info.endpoint_url.startswith("http://127.0.0.1:")
    if aws_service.backend == "local":
        assert aws_service.version.startswith("moto 5.")
        assert aws_service.startup_seconds > 0

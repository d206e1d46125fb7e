import hashlib
import io
import os

import httpx
import pytest
from pytest_commons.aws import Aws

from commons_aws import ObjectStore
from commons_aws.storage import MIN_PART


@pytest.fixture
def store(aws: Aws) -> ObjectStore:
    return ObjectStore(aws.client("s3"), aws.bucket("files"))


def test_put_get_list_delete(store: ObjectStore) -> None:
    store.put("reports/2024/q1.csv", b"a,b\n1,2\n", content_type="text/csv")
    store.put("reports/2024/q2.csv", b"a,b\n3,4\n")
    store.put("images/logo.png", b"\x89PNG")

    assert store.get("reports/2024/q1.csv") == b"a,b\n1,2\n"
    assert sorted(store.keys("reports/")) == ["reports/2024/q1.csv", "reports/2024/q2.csv"]
    store.delete("images/logo.png")
    assert store.keys("images/") == []


class FailingStream(io.RawIOBase):
    """Yields ``good`` bytes, then breaks like a dropped upstream connection."""

    def __init__(self, good: int) -> None:
        self.left = good

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise ConnectionResetError("upstream went away")
        n = min(size, self.left)
        self.left -= n
        return os.urandom(n)


def test_large_streams_upload_in_parts_and_stream_back(store: ObjectStore, aws: Aws) -> None:
    data = os.urandom(2 * MIN_PART + 123_456)
    assert store.upload("big.bin", io.BytesIO(data)) == len(data)

    head = aws.client("s3").head_object(Bucket=store.bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: a multipart upload
    digest = hashlib.sha256()
    for chunk in store.iter_chunks("big.bin"):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def test_small_streams_are_a_single_put(store: ObjectStore, aws: Aws) -> None:
    assert store.upload("small.txt", io.BytesIO(b"hello")) == 5
    head = aws.client("s3").head_object(Bucket=store.bucket, Key="small.txt")
    assert "-" not in head["ETag"]


def test_a_failed_upload_is_aborted_and_leaves_nothing(store: ObjectStore, aws: Aws) -> None:
    with pytest.raises(ConnectionResetError):
        store.upload("broken.bin", FailingStream(good=MIN_PART + 10))  # type: ignore[arg-type]

    assert store.keys() == []
    uploads = aws.client("s3").list_multipart_uploads(Bucket=store.bucket)
    assert uploads.get("Uploads", []) == []


def test_presigned_urls_serve_the_object_without_credentials(store: ObjectStore) -> None:
    store.put("share/invoice.pdf", b"%PDF-1.7 ...")

    response = httpx.get(store.presigned_get("share/invoice.pdf", expires=60))
    assert response.status_code == 200
    assert response.content == b"%PDF-1.7 ..."
    assert httpx.get(store.presigned_get("share/missing.pdf")).status_code == 404

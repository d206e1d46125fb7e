"""An S3 bucket as an object store; uploads stream in parts, never holding a whole file."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

MIN_PART = 5 * 1024 * 1024  # S3's minimum size for every part but the last


class ObjectStore:
    def __init__(self, s3: Any, bucket: str, part_size: int = MIN_PART) -> None:
        if part_size < MIN_PART:
            raise ValueError(f"part_size must be at least {MIN_PART} bytes")
        self.s3, self.bucket, self.part_size = s3, bucket, part_size

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream an object down in chunks."""
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        yield from body.iter_chunks(chunk_size)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)

    def presigned_get(self, key: str, expires: int = 300) -> str:
        """A URL anyone can GET the object from for ``expires`` seconds."""
        url: str = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
        )
        return url

    def upload(self, key: str, stream: BinaryIO) -> int:
        """Upload ``stream`` (read part by part); multipart when it spans more than one part.
        A failure aborts the multipart upload so no orphaned parts are billed. Returns bytes."""
        first = stream.read(self.part_size)
        if len(first) < self.part_size:
            self.put(key, first)
            return len(first)
        upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        parts: list[dict[str, Any]] = []
        total, chunk = 0, first
        try:
            while chunk:
                number = len(parts) + 1
                response = self.s3.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
                total += len(chunk)
                chunk = stream.read(self.part_size)
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        return total

"""ArchiveStore on S3-compatible object storage (see ``archive.store`` for the contract).

An upload is an S3 multipart upload of ``<prefix><room>.jsonl.gz``: parts of
``part_size`` bytes go up as they fill, and ``commit`` sends the rest as the last part and
completes the upload, which makes the whole object visible at once. Until then nothing is
visible under the key (S3 keeps the parts aside), so a writer that dies mid-upload leaves
no half archive, only parts that the next commit of the room aborts (and that a bucket
lifecycle rule ``AbortIncompleteMultipartUpload`` clears anyway). An archive smaller than
one part is one ``PutObject``, which is just as atomic and one request instead of three.

The client is boto3 (pure Python, the reference S3 client: AWS, MinIO, Tencent COS,
Alibaba OSS, Ceph RGW), its blocking calls run in threads. Archives are written a few
times per room and read by operators, so a thread per call costs nothing that matters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from archive.store import READ_CHUNK, check_room_id
from archive.store_local import SUFFIX

log = logging.getLogger("interact.archive")

MIN_PART = 5 * 1024 * 1024  # S3's smallest part but the last
DEFAULT_PART = 8 * 1024 * 1024
MAX_PARTS = 10_000  # S3's limit: with 8 MiB parts an archive may reach 78 GiB


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def _missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return _status(exc) == 404 or code in ("NoSuchKey", "404", "NotFound")


class S3Upload:
    def __init__(self, store: S3ArchiveStore, key: str) -> None:
        self._store = store
        self._key = key
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._finished = False

    @property
    def upload_id(self) -> str | None:
        return self._upload_id

    async def write(self, data: bytes) -> None:
        if self._finished:
            raise ValueError("upload already finished")
        self._buffer += data
        size = self._store.part_size
        while len(self._buffer) >= size:
            part = bytes(self._buffer[:size])
            del self._buffer[:size]
            await self._send_part(part)

    async def _send_part(self, data: bytes) -> None:
        store = self._store
        if self._upload_id is None:
            started = await store.call(
                "create_multipart_upload",
                Bucket=store.bucket,
                Key=self._key,
                ContentType="application/gzip",
            )
            self._upload_id = str(started["UploadId"])
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"archive larger than {MAX_PARTS} parts: raise archive_s3_part_mb")
        sent = await store.call(
            "upload_part",
            Bucket=store.bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"PartNumber": number, "ETag": sent["ETag"]})

    async def commit(self) -> None:
        if self._finished:
            raise ValueError("upload already finished")
        store = self._store
        rest = bytes(self._buffer)
        self._buffer.clear()
        if self._upload_id is None:
            await store.call(
                "put_object",
                Bucket=store.bucket,
                Key=self._key,
                Body=rest,
                ContentType="application/gzip",
            )
        else:
            if rest:
                await self._send_part(rest)
            await store.call(
                "complete_multipart_upload",
                Bucket=store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._finished = True
        await store.abort_stale(self._key, keep=self._upload_id)

    async def abort(self) -> None:
        self._finished = True
        self._buffer.clear()
        if self._upload_id is not None:
            store = self._store
            with contextlib.suppress(Exception):  # its parts expire by lifecycle anyway
                await store.call(
                    "abort_multipart_upload",
                    Bucket=store.bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                )


class S3ArchiveStore:
    def __init__(
        self, client: Any, bucket: str, *, prefix: str = "", part_size: int = DEFAULT_PART
    ) -> None:
        if not bucket:
            raise ValueError("archive S3 store: a bucket is needed")
        if part_size < 1:
            raise ValueError("archive S3 store: part_size must be positive")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size

    @classmethod
    def connect(
        cls,
        bucket: str,
        *,
        endpoint: str = "",
        region: str = "us-east-1",
        access_key: str = "",
        secret_key: str = "",
        prefix: str = "",
        part_size: int = DEFAULT_PART,
    ) -> S3ArchiveStore:
        """A store with its own boto3 client. Without keys, boto3's usual chain applies
        (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles)."""
        try:
            import boto3
            from botocore.config import Config as BotoConfig
        except ImportError as e:  # an optional extra: the local store needs none of it
            raise RuntimeError(
                "the S3 archive store needs boto3: pip install 'interact[s3]'"
            ) from e

        options: dict[str, Any] = {
            "region_name": region,
            "config": BotoConfig(
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 5, "mode": "standard"},
                # Path-style URLs: what MinIO and most self-hosted S3 servers expect.
                s3={"addressing_style": "path"} if endpoint else {},
            ),
        }
        if endpoint:
            options["endpoint_url"] = endpoint
        if bool(access_key) != bool(secret_key):
            raise ValueError("archive S3 store: give both the access key and the secret key")
        if access_key and secret_key:
            options["aws_access_key_id"] = access_key
            options["aws_secret_access_key"] = secret_key
        client = boto3.session.Session().client("s3", **options)
        return cls(client, bucket, prefix=prefix, part_size=part_size)

    def key(self, room_id: str) -> str:
        return f"{self.prefix}{check_room_id(room_id)}{SUFFIX}"

    async def call(self, method: str, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.client, method), **kwargs)

    async def begin(self, room_id: str) -> S3Upload:
        return S3Upload(self, self.key(room_id))

    async def exists(self, room_id: str) -> bool:
        try:
            await self.call("head_object", Bucket=self.bucket, Key=self.key(room_id))
        except Exception as exc:
            if _missing(exc):
                return False
            raise
        return True

    async def read(self, room_id: str) -> AsyncIterator[bytes] | None:
        try:
            got = await self.call("get_object", Bucket=self.bucket, Key=self.key(room_id))
        except Exception as exc:
            if _missing(exc):
                return None
            raise
        return _chunks(got["Body"])

    async def abort_stale(self, key: str, keep: str | None) -> None:
        """Abort the unfinished uploads of ``key`` left by writers that died."""
        try:
            listed = await self.call("list_multipart_uploads", Bucket=self.bucket, Prefix=key)
            for upload in listed.get("Uploads", []):
                if upload.get("Key") == key and upload.get("UploadId") != keep:
                    await self.call(
                        "abort_multipart_upload",
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload["UploadId"],
                    )
        except Exception:  # tidying only: the archive is committed
            log.warning("could not abort stale uploads of %s", key, exc_info=True)


async def _chunks(body: Any) -> AsyncIterator[bytes]:
    # The object as it was when the GET began: a commit meanwhile does not change it.
    try:
        while chunk := await asyncio.to_thread(body.read, READ_CHUNK):
            yield chunk
    finally:
        body.close()

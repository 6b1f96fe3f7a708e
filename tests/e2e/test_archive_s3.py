"""Archives on S3-compatible storage against real server processes and a real moto
server: written by one process, downloaded (and replayed) from another on Redis, with the
credentials kept out of the logs."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import boto3
import pytest

from tests.e2e.harness import Api, ServerProcess
from tests.e2e.test_archive import HISTORY, check_archive, room_with_everything
from tests.s3_server import ACCESS_KEY, SECRET_KEY, s3_server


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with s3_server(tmp_path_factory.mktemp("moto")) as endpoint:
        yield endpoint


@pytest.mark.parametrize("engine", ["memory", "redis"])
async def test_archive_on_s3(
    servers: Callable[..., ServerProcess], session: aiohttp.ClientSession, tmp_path: Path,
    s3_endpoint: str, engine: str, request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    bucket = f"archives-{secrets.token_hex(5)}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_bucket(Bucket=bucket)
    env = {
        "INTERACT_ARCHIVE_S3_BUCKET": bucket,
        "INTERACT_ARCHIVE_S3_ENDPOINT": s3_endpoint,
        "INTERACT_ARCHIVE_S3_PREFIX": "interact/",
        "INTERACT_ARCHIVE_S3_ACCESS_KEY": ACCESS_KEY,
        "INTERACT_ARCHIVE_S3_SECRET_KEY": SECRET_KEY,
        "INTERACT_HISTORY_SIZE": str(HISTORY),
        "INTERACT_ARCHIVE_INTERVAL": "0.2",
        "INTERACT_ARCHIVE_LEASE": "1",
        "INTERACT_PAY_PROVIDER": "dev",
    }
    if engine == "redis":
        env["INTERACT_REDIS_URL"] = request.getfixturevalue("redis_url")
        env["INTERACT_REDIS_PREFIX"] = request.getfixturevalue("redis_prefix")
    writer = servers(env=env)
    made = await room_with_everything(writer, session)
    reader = servers(env=env) if engine == "redis" else writer
    made["op"] = Api(session, reader.base, reader.token("ops", "operator"))
    await check_archive(reader, session, tmp_path, made)
    listed = client.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == [f"interact/{made['rid']}.jsonl.gz"]
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    for server in (writer, reader):
        log = server.log()
        assert SECRET_KEY not in log
        assert '"archive_s3_secret_key":"***"' in log

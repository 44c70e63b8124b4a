"""DynamoDB Local (Amazon's real implementation, started by scripts/services.sh) and a fresh table
per test."""

from __future__ import annotations

import contextlib
import os
import uuid

DYNAMODB_URL = os.environ.get("DYNAMODB_URL", "http://127.0.0.1:8000")
CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}


def new_table() -> str:
    return f"t_{uuid.uuid4().hex[:16]}"


async def drop_table(name: str) -> None:
    import aioboto3

    async with aioboto3.Session().client(
        "dynamodb", region_name="us-east-1", endpoint_url=DYNAMODB_URL, **CREDENTIALS
    ) as client:
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            await client.delete_table(TableName=name)

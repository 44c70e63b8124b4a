"""The single table: its key schema and GSIs, created for development or checked in production.

``docs/dynamodb.md`` documents the layout and gives the CloudFormation template and AWS CLI
commands that create exactly what ``create_table=True`` creates here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..errors import StorageError
from .connection import Connection

GSIS = ("gsi1", "gsi2", "gsi3", "gsi4")


class TableSetupError(StorageError):
    """The table or one of its GSIs is missing (and ``create_table`` is off)."""

    default_category = "USER"
    default_status = "TABLE_NOT_READY"


def definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments: ``pk``/``sk`` and four overloaded GSIs, every one projecting ALL."""
    attributes = ["pk", "sk"] + [f"{g}{k}" for g in GSIS for k in ("pk", "sk")]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": g,
                "KeySchema": [
                    {"AttributeName": f"{g}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{g}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for g in GSIS
        ],
    }


def table_problems(table: dict[str, Any]) -> list[str]:
    """What differs from the layout this package needs, one line each."""
    found: list[str] = []
    keys = {k["AttributeName"]: k["KeyType"] for k in table.get("KeySchema", [])}
    if keys != {"pk": "HASH", "sk": "RANGE"}:
        found.append(f"key schema is {keys}, expected pk (HASH) and sk (RANGE)")
    indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
    for g in GSIS:
        index = indexes.get(g)
        if index is None:
            found.append(f"GSI {g} ({g}pk HASH, {g}sk RANGE, projection ALL) is missing")
            continue
        index_keys = {k["AttributeName"]: k["KeyType"] for k in index["KeySchema"]}
        if index_keys != {f"{g}pk": "HASH", f"{g}sk": "RANGE"}:
            found.append(f"GSI {g} has keys {index_keys}, expected {g}pk (HASH) and {g}sk (RANGE)")
        if index.get("Projection", {}).get("ProjectionType") != "ALL":
            found.append(f"GSI {g} must project ALL attributes")
    return found


async def ensure_table(conn: Connection, *, create: bool, ttl_attribute: str | None) -> None:
    """Checks the table (creating it first when ``create``) and raises ``TableSetupError`` listing
    everything that is missing."""
    client = await conn.client()
    try:
        described = await client.describe_table(TableName=conn.table)
    except client.exceptions.ResourceNotFoundException:
        if not create:
            raise TableSetupError(
                f"DynamoDB table {conn.table!r} does not exist. Create it as docs/dynamodb.md shows "
                "(CloudFormation or AWS CLI), or pass create_table=True for development."
            ) from None
        await _create(conn, ttl_attribute)
        described = await client.describe_table(TableName=conn.table)
    problems = table_problems(described["Table"])
    if problems:
        raise TableSetupError(
            f"DynamoDB table {conn.table!r} does not have the layout this store needs: "
            + "; ".join(problems)
            + ". See docs/dynamodb.md."
        )


async def _create(conn: Connection, ttl_attribute: str | None) -> None:
    client = await conn.client()
    with contextlib.suppress(client.exceptions.ResourceInUseException):  # a concurrent store created it
        await client.create_table(**definition(conn.table))
    for _ in range(600):
        status = (await client.describe_table(TableName=conn.table))["Table"]["TableStatus"]
        if status == "ACTIVE":
            break
        await asyncio.sleep(0.1)
    if ttl_attribute is not None:
        try:
            await client.update_time_to_live(
                TableName=conn.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
            )
        except client.exceptions.ClientError as exc:
            if "already enabled" not in str(exc):  # a concurrent creator enabled it first
                raise

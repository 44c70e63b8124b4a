"""Where the PostgreSQL tests connect (``make services`` starts the server), and throwaway schemas."""

from __future__ import annotations

import os
import uuid

import asyncpg

PG_URL = os.environ.get("MASTRA_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def new_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


async def drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()

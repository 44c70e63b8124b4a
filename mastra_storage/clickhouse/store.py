"""``ClickhouseStore``: observability and scores on ClickHouse, over one transport."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..backend import BackendStore, Check
from .observability import ObservabilityStorageClickhouse
from .scores import ScoresClickhouse
from .transport import transport_for


class ClickhouseStore(BackendStore):
    """Observability and scores on ClickHouse: ``url="http(s)://host:8123"`` (async HTTP client) or
    ``url="chdb://path"`` (the engine embedded in this process). Compose it with other backends for
    the other domains. ``ttl={"spans": "30d", "scores": "90d"}`` sets row TTLs."""

    observability: ObservabilityStorageClickhouse
    scores: ScoresClickhouse

    def __init__(
        self,
        *,
        id: str,
        url: str,
        username: str | None = None,
        password: str | None = None,
        database: str = "default",
        ttl: Mapping[str, Any] | None = None,
        disable_init: bool = False,
    ) -> None:
        self.transport = transport_for(url, username, password)
        stores = [
            cls(transport=self.transport, database=database, ttl=ttl, disable_init=disable_init)
            for cls in (ObservabilityStorageClickhouse, ScoresClickhouse)
        ]
        super().__init__(id=id, stores=stores, disable_init=disable_init)

    async def close(self) -> None:
        await super().close()
        await self.transport.close()

    async def _engine_checks(self) -> list[Check]:
        await self.transport.open()
        _, rows = await self.transport.query("SELECT version()")
        version = str(rows[0][0])
        major = int(version.split(".")[0])
        return [Check("clickhouse version", major >= 23, f"ClickHouse {version} (23 or later)")]

    async def size_bytes(self) -> int | None:
        await self.transport.open()
        _, rows = await self.transport.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = {db:String}",
            {"db": self.scores.database},
        )
        return int(rows[0][0] or 0)

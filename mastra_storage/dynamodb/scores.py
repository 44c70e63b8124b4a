"""Evaluation scores on DynamoDB: one item per score, a GSI per list."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from ..core.paging import Window
from ..domains.scores import ScoresStorage
from ..types import ScoreRow
from .base import DynamoDomain, Kept, Partition
from .items import Expr, esc, s, when

# Which GSI answers which list (the first key given picks it); the rest of ``equals`` are filters.
_FILTER_ATTRS = {"scorerId": "sid", "runId": "rid", "entityId": "eid", "entityType": "et", "source": "src",
                 "traceId": "tid", "spanId": "spid"}  # fmt: skip


def score_key(score_id: str) -> tuple[str, str]:
    return f"SCORE#{esc(score_id)}", "SCORE"


class ScoresDynamoDB(DynamoDomain, ScoresStorage):
    """Scores on DynamoDB; every list is a Query on a GSI, newest first."""

    entities: ClassVar[tuple[str, ...]] = ("score",)
    retention_entities: ClassVar[dict[str, str]] = {"scorers": "score"}
    record_entities: ClassVar[dict[str, tuple[str, Kept[Any] | None]]] = {"scores": ("score", None)}

    async def _save_score(self, row: ScoreRow) -> None:
        items = await self.items(*score_key(row.id), "score", row, row.created_at)
        # Same-millisecond scores keep their saving order (newest first), as the SQL stores do.
        order = f"{when(row.created_at)}#{time.time_ns():020d}#{esc(row.id)}"
        main = items[0]
        main.update(
            gsi1pk=s(f"SCORES#S#{esc(row.scorer_id)}"),
            gsi1sk=s(order),
            gsi2pk=s(f"SCORES#RUN#{esc(row.run_id)}"),
            gsi2sk=s(order),
            gsi3pk=s(f"SCORES#E#{esc(row.entity_type or '')}#{esc(row.entity_id)}"),
            gsi3sk=s(order),
        )
        if row.trace_id is not None and row.span_id is not None:
            main.update(gsi4pk=s(f"SCORES#SPAN#{esc(row.trace_id)}#{esc(row.span_id)}"), gsi4sk=s(order))
        for field, attr in _FILTER_ATTRS.items():
            value = getattr(row, _snake(field))
            if value is not None:
                main[attr] = s(value)
        await self.write(items)

    async def _get_score(self, id: str) -> ScoreRow | None:
        found = await self.read(*score_key(id), "score", ScoreRow)
        return found[0] if found else None

    async def _score_page(self, equals: dict[str, str], win: Window) -> tuple[list[ScoreRow], int]:
        given = equals
        if "scorerId" in given:
            part, keyed = Partition("gsi1", f"SCORES#S#{esc(given['scorerId'])}"), {"scorerId"}
        elif "runId" in given:
            part, keyed = Partition("gsi2", f"SCORES#RUN#{esc(given['runId'])}"), {"runId"}
        elif "traceId" in given:
            pk = f"SCORES#SPAN#{esc(given['traceId'])}#{esc(given['spanId'])}"
            part, keyed = Partition("gsi4", pk), {"traceId", "spanId"}
        else:
            pk = f"SCORES#E#{esc(given['entityType'])}#{esc(given['entityId'])}"
            part, keyed = Partition("gsi3", pk), {"entityId", "entityType"}

        def expr() -> Expr:
            e = self.expr("score")
            for field, value in given.items():
                if field not in keyed:
                    e.equals(_FILTER_ATTRS[field], value)
            return e

        found = await self.page([part], expr, win, forward=False)
        return await self.decode(found.items, ScoreRow), found.total or 0


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)

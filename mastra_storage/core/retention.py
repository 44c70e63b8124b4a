"""Retention: the validated plan of what ``prune()`` deletes, shared by every backend."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import ValidationError
from .codec import parse_duration, utc_now


@dataclass(frozen=True)
class PrunePlan:
    """One table to prune: rows whose ``column`` is older than ``cutoff`` go, ``batch`` at a time."""

    key: str
    table: str
    column: str
    cutoff: datetime
    batch: int


def retention_plan(domain: str, tables: Mapping[str, tuple[str, str]], retention: Mapping[str, Any]) -> list[PrunePlan]:
    """The validated prune plan of one domain, children first (the order of ``tables``).

    A policy is a positive age (``"30d"``, a timedelta, milliseconds) or
    ``{"max_age": ..., "batch_size": n}``. Anything else is a ValidationError, before anything is deleted.
    """
    if not isinstance(retention, Mapping):
        raise ValidationError(f"retention must be a mapping of domain -> {{table: max age}}, got {retention!r:.60}")
    policies = retention.get(domain)
    if policies is None:
        return []
    if not isinstance(policies, Mapping):
        raise ValidationError(f"retention[{domain!r}] must be a mapping of table -> max age, got {policies!r:.60}")
    unknown = set(policies) - set(tables)
    if unknown:
        raise ValidationError(f"unknown retention table(s) for {domain}: {sorted(unknown)}; known: {list(tables)}")
    plans: list[PrunePlan] = []
    for key, (table, column) in tables.items():
        if key not in policies:
            continue
        policy = policies[key]
        if isinstance(policy, Mapping):
            max_age, batch = policy.get("max_age"), policy.get("batch_size", 1000)
        else:
            max_age, batch = policy, 1000
        try:
            age = parse_duration(max_age)  # type: ignore[arg-type]  # a wrong type is reported below
            if age <= timedelta(0):  # a cutoff in the future would delete every row
                raise ValueError(f"the age must be a positive duration, got {max_age!r}")
            cutoff = utc_now() - age
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise ValidationError(f"retention {domain}.{key}: {exc}") from exc
        if isinstance(batch, bool) or not isinstance(batch, int) or not 0 < batch <= 1_000_000:
            raise ValidationError(f"retention {domain}.{key}: batch_size must be an integer in 1..1000000")
        plans.append(PrunePlan(key, table, column, cutoff, batch))
    return plans

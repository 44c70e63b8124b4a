"""Workflow-run rules every backend applies the same way: input checks and Mastra's snapshot merges
(reference §3.2)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.codec import utc_now
from ..core.validate import check_datetime, check_mapping, check_mapping_text, require_id
from ..errors import ValidationError
from ..types import WorkflowRun

PENDING_MARKER = "__mastra_pending__"


def empty_snapshot(run_id: str) -> dict[str, Any]:
    """What ``update_workflow_results`` starts from when the run has no snapshot yet."""
    return {
        "context": {},
        "activePaths": [],
        "activeStepsPath": {},
        "suspendedPaths": {},
        "resumeLabels": {},
        "serializedStepGraph": [],
        "value": {},
        "waitingPaths": {},
        "status": "pending",
        "runId": run_id,
        "requestContext": {},
        "timestamp": int(utc_now().timestamp() * 1000),
    }


def empty_run(workflow_name: str, run_id: str) -> WorkflowRun:
    """The run ``update_workflow_results`` creates when none exists: an empty snapshot, made now."""
    now = utc_now()
    return WorkflowRun(
        workflow_name=workflow_name, run_id=run_id, snapshot=empty_snapshot(run_id), created_at=now, updated_at=now
    )


def _is_pending(slot: Any) -> bool:
    return isinstance(slot, Mapping) and slot.get(PENDING_MARKER) is True


def _slot_open(slot: Any) -> bool:
    return slot is None or _is_pending(slot) or (isinstance(slot, Mapping) and slot.get("status") == "suspended")


def merge_step_result(old: Any, new: Mapping[str, Any]) -> dict[str, Any]:
    """``context[step] = result``, except for foreach steps whose ``output`` arrays merge by slot:
    a non-null new value wins, the pending marker resets a still-open slot to null."""
    old_out = old.get("output") if isinstance(old, Mapping) else None
    new_out = new.get("output")
    if not isinstance(new_out, list):
        return dict(new)
    if not isinstance(old_out, list):
        old_out = []
    merged: list[Any] = list(old_out) + [None] * max(0, len(new_out) - len(old_out))
    pending_seen = False
    for i, value in enumerate(new_out):
        if _is_pending(value):
            pending_seen = True
            if _slot_open(merged[i]):
                merged[i] = None
        elif value is not None:
            merged[i] = value
    base = {**old, **new} if pending_seen and isinstance(old, Mapping) else dict(new)
    base["output"] = merged
    return base


def apply_step_result(
    snapshot: dict[str, Any], step_id: str, result: Mapping[str, Any], request_context: Mapping[str, Any]
) -> dict[str, Any]:
    """Merges one step's result and request context into ``snapshot`` (in place); returns the context."""
    context = snapshot.get("context")
    if not isinstance(context, dict):  # missing, or null in a snapshot written elsewhere: start one
        context = snapshot["context"] = {}
    context[step_id] = merge_step_result(context.get(step_id), result)
    stored = snapshot.get("requestContext")
    snapshot["requestContext"] = {**(stored if isinstance(stored, dict) else {}), **request_context}
    return copy.deepcopy(context)


def check_step_update(
    workflow_name: object, run_id: object, step_id: object, result: object, request_context: object
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``update_workflow_results`` input, validated: the step result and the request context."""
    require_id(workflow_name, "workflow_name")
    require_id(run_id, "run_id")
    require_id(step_id, "step_id")
    return check_mapping(result, "result"), check_mapping(request_context, "request_context")


def check_state_update(
    workflow_name: object, run_id: object, updates: object, expected_status: object = None
) -> dict[str, Any]:
    """``update_workflow_state`` input, validated: the keys to merge (``expectedStatus`` is never one)."""
    require_id(workflow_name, "workflow_name")
    require_id(run_id, "run_id")
    if (
        expected_status is not None
        and not isinstance(expected_status, str)
        and not (isinstance(expected_status, list | tuple) and all(isinstance(x, str) for x in expected_status))
    ):
        raise ValidationError(f"expected_status must be a status or a list of statuses, got {expected_status!r:.60}")
    changes = check_mapping(updates, "updates")
    changes.pop("expectedStatus", None)
    return changes


def status_matches(snapshot: Mapping[str, Any], expected: str | Sequence[str] | None) -> bool:
    if expected is None:
        return True
    allowed = [expected] if isinstance(expected, str) else list(expected)
    return snapshot.get("status") in allowed


def check_run(
    workflow_name: object,
    run_id: object,
    snapshot: object,
    resource_id: object,
    created_at: object,
    updated_at: object,
) -> tuple[WorkflowRun, bytes]:
    """The run ``persist_workflow_snapshot`` writes, validated (timestamps default to now), and its
    snapshot's JSON as the check encoded it (see ``check_json_text``)."""
    require_id(workflow_name, "workflow_name")
    require_id(run_id, "run_id")
    body, text = check_mapping_text(snapshot, "snapshot")
    if resource_id is not None and not isinstance(resource_id, str):
        raise ValidationError(f"resource_id must be a string, got {type(resource_id).__name__}")
    now = utc_now()
    run = WorkflowRun(
        workflow_name=str(workflow_name),
        run_id=str(run_id),
        snapshot=body,
        resource_id=resource_id,
        created_at=check_datetime(created_at, "created_at") or now,
        updated_at=check_datetime(updated_at, "updated_at") or now,
    )
    return run, text

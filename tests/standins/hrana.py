"""A test-only stand-in for a remote libSQL server (sqld/Turso): Hrana over HTTP, v1.

It answers ``POST /<db>/v1/execute`` and ``POST /<db>/v1/batch`` (with batch step conditions) by
running the statements on a local SQLite database (``sqlean``, SQLite >= 3.45) per ``<db>`` path,
so ``libsql-client`` talks to it exactly as it talks to sqld. It is NOT a server to ship: one
request at a time, no auth, no WebSocket, no streams. Users with Docker test against a real
``libsql-server`` from docker-compose.yml.
"""

from __future__ import annotations

import base64
from typing import Any

import sqlean
from aiohttp import web

from .threaded_http import ThreadedHttpServer


def _value_in(value: dict[str, Any]) -> Any:
    kind = value["type"]
    if kind == "null":
        return None
    if kind == "integer":
        return int(value["value"])
    if kind == "float":
        return float(value["value"])
    if kind == "text":
        return str(value["value"])
    if kind == "blob":
        return base64.b64decode(value["base64"])
    raise ValueError(f"unknown value type {kind!r}")


def _value_out(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, bytes):
        return {"type": "blob", "base64": base64.b64encode(value).decode()}
    return {"type": "text", "value": str(value)}


class HranaStandIn(ThreadedHttpServer):
    """Runs the stand-in on its own thread and event loop; ``url(name)`` names a fresh database."""

    def __init__(self) -> None:
        super().__init__("hrana-stand-in")
        self._dbs: dict[str, Any] = {}
        self.requests = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}/"

    def _db(self, name: str) -> Any:
        if name not in self._dbs:
            self._dbs[name] = sqlean.connect(":memory:", isolation_level=None, check_same_thread=False)
        return self._dbs[name]

    def _run(self, db: Any, stmt: dict[str, Any]) -> dict[str, Any]:
        if stmt.get("named_args"):
            args: Any = {a["name"].lstrip(":@$"): _value_in(a["value"]) for a in stmt["named_args"]}
        else:
            args = [_value_in(v) for v in stmt.get("args", [])]
        cursor = db.execute(stmt["sql"], args)
        rows = cursor.fetchall() if cursor.description else []
        return {
            "cols": [{"name": d[0]} for d in cursor.description or []],
            "rows": [[_value_out(v) for v in row] for row in rows] if stmt.get("want_rows", True) else [],
            "affected_row_count": max(cursor.rowcount, 0),
            "last_insert_rowid": str(cursor.lastrowid) if cursor.lastrowid is not None else None,
        }

    @staticmethod
    def _holds(cond: dict[str, Any] | None, results: list[Any], errors: list[Any]) -> bool:
        if cond is None:
            return True
        kind = cond["type"]
        if kind == "ok":
            return results[cond["step"]] is not None
        if kind == "error":
            return errors[cond["step"]] is not None
        if kind == "not":
            return not HranaStandIn._holds(cond["cond"], results, errors)
        if kind == "and":
            return all(HranaStandIn._holds(c, results, errors) for c in cond["conds"])
        if kind == "or":
            return any(HranaStandIn._holds(c, results, errors) for c in cond["conds"])
        raise ValueError(f"unknown condition {kind!r}")

    async def _execute(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.json()
        try:
            result = self._run(self._db(request.match_info["db"]), body["stmt"])
        except sqlean.Error as exc:
            return web.json_response({"message": str(exc), "code": "SQLITE_ERROR"}, status=400)
        return web.json_response({"result": result})

    async def _batch(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.json()
        db = self._db(request.match_info["db"])
        results: list[Any] = []
        errors: list[Any] = []
        for step in body["batch"]["steps"]:
            if not self._holds(step.get("condition"), results, errors):
                results.append(None)
                errors.append(None)
                continue
            try:
                results.append(self._run(db, step["stmt"]))
                errors.append(None)
            except sqlean.Error as exc:
                results.append(None)
                errors.append({"message": str(exc), "code": "SQLITE_ERROR"})
        return web.json_response({"result": {"step_results": results, "step_errors": errors}})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{db}/v1/execute", self._execute)
        app.router.add_post("/{db}/v1/batch", self._batch)
        return app

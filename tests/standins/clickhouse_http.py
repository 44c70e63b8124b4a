"""A test-only stand-in for a ClickHouse server: its HTTP interface, answered by chdb.

No modern ClickHouse server can be installed on the CI machines, so the async HTTP transport is
tested against this: it takes queries the way ClickHouse's HTTP interface does (``query`` in the URL
or the body, ``param_*`` server-side parameters, ``INSERT … FORMAT Native`` bodies, ``/ping``) and
runs each one on the real ClickHouse engine embedded through chdb. It is NOT a server to ship: one
request at a time, no sessions, no auth, no compression. Users with Docker test against the real
``clickhouse/clickhouse-server`` in docker-compose.yml.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from typing import Any

import chdb
from aiohttp import web

from .threaded_http import ThreadedHttpServer

_TRAILING_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)


class ClickhouseHttpStandIn(ThreadedHttpServer):
    def __init__(self, path: str) -> None:
        super().__init__("clickhouse-stand-in")
        self.path = path
        self.inserts = 0
        self._conn: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, sql: str, fmt: str, params: dict[str, Any]) -> bytes:
        result = self._conn.query(sql, fmt, params=params)
        data: bytes = result.bytes() if hasattr(result, "bytes") else bytes(result)
        return data

    def _insert(self, statement: str, data: bytes) -> None:
        with tempfile.NamedTemporaryFile(suffix=".native", delete=False) as tmp:
            tmp.write(data)
        try:
            match = _TRAILING_FORMAT.search(statement)
            head = statement[: match.start()] if match else statement
            fmt = match.group(1) if match else "Native"
            self._run(f"{head} FROM INFILE '{tmp.name}' FORMAT {fmt}", "TabSeparated", {})
            self.inserts += 1
        finally:
            os.unlink(tmp.name)

    async def _handle(self, request: web.Request) -> web.Response:
        args: dict[str, Any] = dict(request.query)
        body = await request.read()
        if request.content_type == "multipart/form-data":
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
            body = b""
        params = {k[len("param_") :]: v for k, v in args.items() if k.startswith("param_")}
        try:
            if args.get("database"):
                self._run(f"USE `{args['database']}`", "TabSeparated", {})
            if "query" in args and body and str(args["query"]).lstrip().upper().startswith("INSERT"):
                self._insert(str(args["query"]), body)
                out, fmt = b"", "TabSeparated"
            elif "query" not in args and body.lstrip()[:6].upper() == b"INSERT":
                statement, _, rest = body.partition(b"\n")  # "INSERT … FORMAT Native\n" then the data
                self._insert(statement.decode(), rest)
                out, fmt = b"", "TabSeparated"
            else:
                sql = str(args["query"]) if "query" in args else body.decode()
                match = _TRAILING_FORMAT.search(sql)
                fmt = match.group(1) if match else "TabSeparated"
                out = self._run(sql[: match.start()] if match else sql, fmt, params)
        except Exception as exc:
            code = re.search(r"Code: (\d+)", str(exc))
            return web.Response(
                status=500, text=str(exc), headers={"X-ClickHouse-Exception-Code": code.group(1) if code else "1"}
            )
        headers = {
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Server-Display-Name": "chdb-stand-in",
            "X-ClickHouse-Query-Id": str(args.get("query_id", "")),
            "X-ClickHouse-Summary": json.dumps({"read_rows": "0", "written_rows": "0"}),
        }
        return web.Response(body=out, headers=headers, content_type="application/octet-stream")

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="Ok.\n")

    def app(self) -> web.Application:
        self._conn = chdb.connect(self.path)  # type: ignore[no-untyped-call]  # on the server's thread
        app = web.Application(client_max_size=1 << 30)
        app.router.add_get("/ping", self._ping)
        app.router.add_route("*", "/", self._handle)
        return app

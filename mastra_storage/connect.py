"""``connect(url)``: the backend store a URL names.

```python
from mastra_storage import connect

store = connect("file:./mastra.db")                                   # LibSQLStore, the embedded default
store = connect("postgresql://app:secret@db:5432/app?schema=mastra")  # PostgresStore in schema "mastra"
store = connect("dynamodb://mastra?region=eu-west-1")                 # DynamoDBStore on table "mastra"
store = connect("dynamodb://mastra?endpoint=http://127.0.0.1:8000")   # ... on DynamoDB Local
store = connect("chdb:///var/lib/mastra/ch")                          # ClickhouseStore, engine in process
store = connect("clickhouse://default:pw@ch:8123?database=mastra")    # ClickhouseStore over HTTP
async with store:
    ...
```

| scheme | store | query parameters |
|---|---|---|
| `file:`, `:memory:`, `libsql://`, `http(s)://`, `ws(s)://` | `LibSQLStore` | `authToken` (remote) |
| `postgresql://`, `postgres://` | `PostgresStore` | `schema` (default `public`); the rest goes to asyncpg |
| `dynamodb://TABLE` | `DynamoDBStore` | `region`, `endpoint`, `create_table=true` |
| `chdb://PATH`, `clickhouse://[user:password@]host:port` | `ClickhouseStore` | `database` |

Keyword options are passed to the store (``id`` defaults to the scheme). Secrets in the URL are never
shown: ``masked_url(url)`` is what error messages print. Backends are imported only when named, so
``connect`` needs only the extra of the backend it opens.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .backend import BackendStore, masked_url
from .errors import ValidationError

__all__ = ["connect"]

_LIBSQL = ("file:", ":memory:", "libsql://", "http://", "https://", "ws://", "wss://")


def connect(url: str, **options: Any) -> BackendStore:
    """The backend store for ``url`` (not yet initialized: ``async with`` it, or ``await init()``)."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(f"url must be a non-empty string, got {url!r:.60}")
    scheme = url.split(":", 1)[0].lower()
    if url.startswith(_LIBSQL) or url == ":memory:":
        from .libsql import LibSQLStore

        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        token = query.pop("authToken", None)
        if token is not None and "auth_token" not in options:
            options["auth_token"] = token
        if not url.startswith(("file:", ":memory:")):
            url = urlunsplit(parts._replace(query=urlencode(query)))
        return LibSQLStore(id=options.pop("id", "libsql"), url=url, **options)
    if scheme in ("postgresql", "postgres"):
        from .pg import PostgresStore

        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        schema = query.pop("schema", None)
        if schema is not None and "schema_name" not in options:
            options["schema_name"] = schema
        dsn = urlunsplit(parts._replace(query=urlencode(query)))
        return PostgresStore(id=options.pop("id", "pg"), connection_string=dsn, **options)
    if scheme == "dynamodb":
        from .dynamodb import DynamoDBStore

        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        table = parts.netloc + parts.path.rstrip("/")
        for key, option in (("region", "region"), ("endpoint", "endpoint_url")):
            if key in query and option not in options:
                options[option] = query.pop(key)
        if query.pop("create_table", "false").lower() == "true":
            options.setdefault("create_table", True)
        if query:
            raise ValidationError(f"unknown dynamodb:// parameter(s) {sorted(query)} in {masked_url(url)}")
        return DynamoDBStore(id=options.pop("id", "dynamodb"), table_name=table, **options)
    if scheme in ("chdb", "clickhouse"):
        from .clickhouse import ClickhouseStore

        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        if "database" in query and "database" not in options:
            options["database"] = query.pop("database")
        if scheme == "chdb":
            path = f"chdb://{parts.netloc}{parts.path}"
            return ClickhouseStore(id=options.pop("id", "clickhouse"), url=path, **options)
        options.setdefault("username", parts.username)
        options.setdefault("password", parts.password)
        host = f"http://{parts.hostname}:{parts.port or 8123}"
        return ClickhouseStore(id=options.pop("id", "clickhouse"), url=host, **options)
    raise ValidationError(
        f"cannot tell the backend of {masked_url(url)}: use file:, :memory:, libsql://, postgresql://, "
        "dynamodb://, chdb:// or clickhouse://"
    )

"""One aioboto3 DynamoDB client per store, and the request helpers every domain uses.

The helpers are the only place that talks to the service: Query following ``LastEvaluatedKey``,
BatchGetItem / BatchWriteItem retrying what the service left unprocessed, TransactWriteItems
retrying transaction conflicts. All of them are coroutines on aiobotocore's async HTTP client.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypedDict, TypeVar

from ..core.coalesce import Coalescer
from ..core.lifecycle import CallTracker, InitOnce
from ..errors import ValidationError

T = TypeVar("T")
Item = dict[str, Any]  # an item in DynamoDB's attribute-value form: {"pk": {"S": "..."}, ...}

_TABLE_NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")
BATCH_WRITE = 25  # the service's BatchWriteItem limit
BATCH_GET = 100  # the service's BatchGetItem limit
MAX_ATTEMPTS = 8


# DynamoDB's key limits (table and GSI keys alike): 2,048 bytes for a partition key, 1,024 for a sort
# key. Ids are at most 256 bytes, but escaping '#'/'%' triples them and some keys hold two ids.
_KEY_LIMITS = {"pk": 2048, "sk": 1024, **{f"gsi{i}pk": 2048 for i in range(1, 5)},
               **{f"gsi{i}sk": 1024 for i in range(1, 5)}}  # fmt: skip


def check_key_sizes(item: Item, entity: str) -> None:
    """A ValidationError, before anything is written, for a key DynamoDB would refuse."""
    for name, limit in _KEY_LIMITS.items():
        value = item.get(name)
        if value is not None and len(value["S"].encode()) > limit:
            raise ValidationError(
                f"{entity}: its ids make the DynamoDB key {name} {len(value['S'].encode())} bytes (limit {limit}); "
                "ids full of '#' or '%' take three bytes per such character in a key"
            )


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff (AWS's recommendation), 25 ms doubling, capped at 1 s."""
    return random.uniform(0, min(1.0, 0.025 * 2**attempt))


class DynamoOptions(TypedDict, total=False):
    """How a DynamoDB store reaches its table (the fields of ``DynamoSettings``, as constructor keywords)."""

    table_name: str
    region: str | None
    endpoint_url: str | None
    credentials: Mapping[str, str] | None
    connect_timeout: float
    read_timeout: float
    max_attempts: int
    close_timeout: float


@dataclass(kw_only=True)
class DynamoSettings:
    """Where the table is and how to reach it; credentials in boto3's spelling (masked in ``repr``).

    ``connect_timeout`` and ``read_timeout`` (seconds) bound each HTTP attempt and ``max_attempts``
    counts botocore's attempts of a request (throttling, transient network errors): a frozen
    endpoint surfaces as an error after about ``max_attempts * read_timeout``, an unreachable one
    after ``max_attempts * connect_timeout``. ``close_timeout`` is how long ``close()`` waits for
    calls in flight before it closes the client under them.
    """

    table_name: str
    region: str | None = None
    endpoint_url: str | None = None
    credentials: Mapping[str, str] | None = field(default=None, repr=False)
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    max_attempts: int = 3
    close_timeout: float = 10.0

    def __repr__(self) -> str:
        masked = None if self.credentials is None else {k: "***" for k in self.credentials}
        return (
            f"DynamoSettings(table_name={self.table_name!r}, region={self.region!r}, "
            f"endpoint_url={self.endpoint_url!r}, credentials={masked!r}, connect_timeout={self.connect_timeout}, "
            f"read_timeout={self.read_timeout}, max_attempts={self.max_attempts}, "
            f"close_timeout={self.close_timeout})"
        )

    def __post_init__(self) -> None:
        if not isinstance(self.table_name, str) or not _TABLE_NAME.fullmatch(self.table_name):
            raise ValidationError(f"table_name must match {_TABLE_NAME.pattern}, got {self.table_name!r}")
        for name in ("connect_timeout", "read_timeout", "close_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 3600:
                raise ValidationError(f"{name} must be a number of seconds in (0, 3600), got {value!r}")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValidationError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        allowed = {"aws_access_key_id", "aws_secret_access_key", "aws_session_token"}
        if self.credentials is not None:
            unknown = set(self.credentials) - allowed
            if unknown or not {"aws_access_key_id", "aws_secret_access_key"} <= set(self.credentials):
                raise ValidationError(
                    f"credentials take aws_access_key_id, aws_secret_access_key and optionally "
                    f"aws_session_token; got {sorted(self.credentials)}"
                )

    def client_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "region_name": self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1",
        }  # fmt: skip
        endpoint = (
            self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
        )
        if endpoint:
            args["endpoint_url"] = endpoint
        if self.credentials is not None:
            args.update(self.credentials)
        return args


@dataclass
class Connection:
    """The store's one client, opened on first use and closed by ``close()``; every domain of a
    ``DynamoDBStore`` shares it (and its ``calls``, which ``close()`` waits for)."""

    settings: DynamoSettings
    _client: Any = None
    _stack: AsyncExitStack | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    calls: CallTracker = field(default_factory=CallTracker)
    # The table's check (or creation), once per TTL attribute for every domain sharing this client.
    _table_checks: dict[str | None, InitOnce] = field(default_factory=dict)
    _gets: Coalescer[tuple[str, str], Item] = field(init=False)

    def __post_init__(self) -> None:
        # 8 keys per group (core/coalesce.GROUP_LIMIT): 8 items of at most 400 KB stay far under
        # BatchGetItem's 16 MB, so a group is never cut short by size.
        self._gets = Coalescer(self._get_many)

    @property
    def table(self) -> str:
        return self.settings.table_name

    async def client(self) -> Any:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    # Importing botocore and reading its service models takes ~0.5 s: done on a
                    # worker thread, so creating the client on the loop only finds them loaded.
                    session, config = await asyncio.to_thread(_prepare, self.settings)
                    stack = AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        session.client("dynamodb", config=config, **self.settings.client_args())
                    )
                    self._stack = stack
        return self._client

    async def table_ready(self, check: Callable[[], Awaitable[None]], ttl_attribute: str | None) -> None:
        """Runs ``check`` (``ensure_table``) once for the domains sharing this client: concurrent
        callers share one DescribeTable; a failure is not kept (the next init checks again)."""
        once = self._table_checks.get(ttl_attribute)
        if once is None:
            once = self._table_checks[ttl_attribute] = InitOnce(check)
        await once()

    async def close(self) -> None:
        """Waits (up to ``close_timeout``) for the calls in flight, then closes the HTTP client."""
        await self.calls.settle(self.settings.close_timeout)
        stack, self._stack, self._client = self._stack, None, None
        self._table_checks.clear()  # a store opened again checks its table again
        if stack is not None:
            await stack.aclose()

    # ------------------------------------------------------------ single items

    async def get(self, key: Item) -> Item | None:
        """One item by key (strongly consistent). Gets that arrive while another is in flight go
        out together as one BatchGetItem (core/coalesce.py); the items are shared, never changed."""
        return await self._gets.get((key["pk"]["S"], key["sk"]["S"]))

    async def _get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        client = await self.client()
        if len(keys) == 1:
            ((pk, sk),) = keys
            key = {"pk": {"S": pk}, "sk": {"S": sk}}
            response = await client.get_item(TableName=self.table, Key=key, ConsistentRead=True)
            item = response.get("Item")
            return {} if item is None else {(pk, sk): item}
        found = await self.batch_get([{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys])
        return {(item["pk"]["S"], item["sk"]["S"]): item for item in found}

    async def put(self, item: Item, **kwargs: Any) -> Item:
        client = await self.client()
        response: Item = await client.put_item(TableName=self.table, Item=item, **kwargs)
        return response

    async def update_if(self, **kwargs: Any) -> tuple[bool, Item | None]:
        """A conditional UpdateItem: (True, None) when it holds, else (False, the item as it is)."""
        client = await self.client()
        try:
            await client.update_item(
                TableName=self.table, **{"ReturnValuesOnConditionCheckFailure": "ALL_OLD", **kwargs}
            )
        except client.exceptions.ConditionalCheckFailedException as exc:
            return False, exc.response.get("Item")
        return True, None

    # ------------------------------------------------------------ queries

    async def query(self, *, limit: int | None = None, **kwargs: Any) -> list[Item]:
        """Up to ``limit`` matching items (all when None), reading page after page as needed: a
        FilterExpression may leave a page short, so one page is never taken as the answer.

        Without a filter a page asks for just what is missing; with one, the pages it evaluates grow
        fourfold each round, so a selective filter costs a few requests, not hundreds."""
        items: list[Item] = []
        if limit is not None and limit <= 0:
            return items
        client = await self.client()
        request = {"TableName": self.table, **kwargs}
        filtered = "FilterExpression" in kwargs
        evaluate = max(2 * limit, 100) if limit is not None else 0
        while True:
            if limit is not None:
                request["Limit"] = evaluate if filtered else max(limit - len(items), 1)
            response = await client.query(**request)
            items.extend(response.get("Items", []))
            if limit is not None and len(items) >= limit:
                return items[:limit]
            last = response.get("LastEvaluatedKey")
            if not last:
                return items
            request["ExclusiveStartKey"] = last
            evaluate = min(evaluate * 4, 10_000)

    async def count(self, *, scan: bool = False, **kwargs: Any) -> int:
        """How many items match a Query — or with ``scan``, a Scan — (Select=COUNT, every page)."""
        total = 0
        client = await self.client()
        request = {"TableName": self.table, "Select": "COUNT", **kwargs}
        while True:
            response = await (client.scan if scan else client.query)(**request)
            total += int(response.get("Count", 0))
            last = response.get("LastEvaluatedKey")
            if not last:
                return total
            request["ExclusiveStartKey"] = last

    async def scan(self, **kwargs: Any) -> tuple[list[Item], Item | None]:
        """One page of a Scan and the key it stopped at (None: the end) — used by
        ``dangerously_clear_all``, ``prune`` and ``export_records``, never to answer a list."""
        client = await self.client()
        response = await client.scan(TableName=self.table, **kwargs)
        return response.get("Items", []), response.get("LastEvaluatedKey") or None

    async def scan_keys(self, **kwargs: Any) -> AsyncIterator[list[Item]]:
        """The keys of every item a Scan selects, page by page."""
        request = {"ProjectionExpression": "pk, sk", **kwargs}
        while True:
            items, last = await self.scan(**request)
            yield items
            if last is None:
                return
            request["ExclusiveStartKey"] = last

    # ------------------------------------------------------------ batches

    async def batch_get(self, keys: Sequence[Item]) -> list[Item]:
        """Every existing item of ``keys`` (in no particular order), 100 keys per request, retrying
        unprocessed keys with backoff."""
        client = await self.client()
        found: list[Item] = []
        unique = list({(k["pk"]["S"], k["sk"]["S"]): k for k in keys}.values())
        for start in range(0, len(unique), BATCH_GET):
            pending: dict[str, Any] = {self.table: {"Keys": unique[start : start + BATCH_GET], "ConsistentRead": True}}
            for attempt in range(MAX_ATTEMPTS):
                response = await client.batch_get_item(RequestItems=pending)
                found.extend(response.get("Responses", {}).get(self.table, []))
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                await asyncio.sleep(backoff(attempt))
            else:
                raise RuntimeError(f"BatchGetItem left keys unprocessed after {MAX_ATTEMPTS} attempts")
        return found

    async def batch_write(self, *, puts: Sequence[Item] = (), deletes: Sequence[Item] = ()) -> None:
        """Puts and deletes, 25 per BatchWriteItem, retrying ``UnprocessedItems`` with backoff.

        Not atomic across items: each request is applied item by item, and a retry finishes the rest."""
        for item in puts:
            check_key_sizes(item, item.get("e", {}).get("S", "record"))
        requests = [{"PutRequest": {"Item": item}} for item in puts]
        unique_deletes = {(k["pk"]["S"], k["sk"]["S"]): k for k in deletes}
        requests += [{"DeleteRequest": {"Key": key}} for key in unique_deletes.values()]
        client = await self.client()
        for start in range(0, len(requests), BATCH_WRITE):
            pending: dict[str, Any] = {self.table: requests[start : start + BATCH_WRITE]}
            for attempt in range(MAX_ATTEMPTS):
                response = await client.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
                await asyncio.sleep(backoff(attempt))
            else:
                raise RuntimeError(f"BatchWriteItem left items unprocessed after {MAX_ATTEMPTS} attempts")

    async def transact(self, actions: Sequence[Item]) -> None:
        """One TransactWriteItems: all of ``actions`` or none. Conflicts with concurrent transactions
        are retried with backoff; a failed condition raises ``ConditionFailed``."""
        client = await self.client()
        items = [{kind: {**body, "TableName": self.table} for kind, body in action.items()} for action in actions]
        for attempt in range(MAX_ATTEMPTS * 2):
            try:
                await client.transact_write_items(TransactItems=items)
                return
            except client.exceptions.TransactionCanceledException as exc:
                reasons = exc.response.get("CancellationReasons", [])
                codes = [r.get("Code", "None") for r in reasons]
                if "ConditionalCheckFailed" in codes:
                    raise ConditionFailed(reasons) from exc
                transient = ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded")
                if not any(code in transient for code in codes):
                    raise
            except client.exceptions.TransactionInProgressException:
                pass
            await asyncio.sleep(backoff(attempt))
        raise RuntimeError(f"TransactWriteItems kept conflicting after {MAX_ATTEMPTS * 2} attempts")


async def gather_all(*calls: Awaitable[T]) -> list[T]:
    """``asyncio.gather`` that leaves nothing behind: if one call fails or the caller is cancelled,
    the others are cancelled and awaited (no task outlives the call, no exception goes unretrieved)."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: the first failure is the one raised
        raise


_MODELS: Any = None  # botocore's data loader with DynamoDB's models read: plain data, no loop or client
# TLS contexts with a CA bundle loaded, by bundle path, and the HTTP session class that uses them:
# plain data and a class, shared by every client of the process whatever its loop.
_TLS: dict[str, Any] = {}
_SESSION: type | None = None
_MODELS_LOCK = threading.Lock()


def _load_tls() -> type:
    """aiobotocore's HTTP session loads the CA bundle into a new TLS context for each client, on the
    event loop (~50 ms of blocked loop per client): the bundles a client may use are loaded once, on
    a worker thread, and the session class below uses them."""
    import aiohttp
    from aiobotocore.httpsession import AIOHTTPSession
    from botocore.httpsession import create_urllib3_context, get_cert_path

    for bundle in (os.environ.get("AWS_CA_BUNDLE"), os.environ.get("REQUESTS_CA_BUNDLE"), get_cert_path(True)):
        if bundle and bundle not in _TLS and os.path.isfile(bundle):
            context = create_urllib3_context()
            context.load_verify_locations(bundle)
            _TLS[bundle] = context

    class PreloadedTLS(AIOHTTPSession):  # type: ignore[misc]
        def _create_connector(self, proxy_url: str | None) -> Any:
            context = _TLS.get(get_cert_path(self._verify)) if self._verify else None
            if proxy_url or self._cert_file or context is None:  # anything unusual: aiobotocore's own way
                return super()._create_connector(proxy_url)
            return aiohttp.TCPConnector(limit=self._max_pool_connections, ssl=context, **self._connector_args)

    return PreloadedTLS


def _prepare(settings: DynamoSettings) -> tuple[Any, Any]:
    """An aioboto3 session with DynamoDB's models loaded, and the client config (on a worker thread).
    The models are read once per process (~50 ms each time otherwise) and shared by later sessions."""
    global _MODELS, _SESSION
    import aioboto3
    from aiobotocore.config import AioConfig
    from aiobotocore.session import AioSession

    core = AioSession()
    with _MODELS_LOCK:
        if _MODELS is None:
            loader = core.get_component("data_loader")
            for kind in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
                loader.load_service_model("dynamodb", kind)
            for name in ("endpoints", "partitions", "sdk-default-configuration"):
                loader.load_data(name)
            _MODELS = loader
        else:
            core.register_component("data_loader", _MODELS)
        if _SESSION is None:
            _SESSION = _load_tls()
    config = AioConfig(
        http_session_cls=_SESSION,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        # botocore's "max_attempts" counts the retries after the first attempt; ours counts them all.
        retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
        max_pool_connections=64,
        # Requests are built by this package from values it has already validated; botocore's
        # model walk over every attribute of every item cost ~15% of a write's client time.
        parameter_validation=False,
        # A fixed User-Agent: botocore otherwise rebuilds its structured one twice per request
        # (GetItem calls/s +25-30% without it, measured); a supplied one is sent as given.
        user_agent=_user_agent(),
    )
    return aioboto3.Session(botocore_session=core), config


@functools.cache
def _user_agent() -> str:
    import platform
    from importlib.metadata import version

    import aiobotocore
    import botocore

    return (
        f"mastra-storage/{version('mastra-storage')} aiobotocore/{aiobotocore.__version__} "
        f"botocore/{botocore.__version__} Python/{platform.python_version()}"
    )


class ConditionFailed(Exception):
    """A condition of a transaction (or a conditional write) did not hold; ``reasons`` has one entry
    per action, with the old item where the action asked for it."""

    def __init__(self, reasons: list[Item]) -> None:
        super().__init__("a write condition did not hold")
        self.reasons = reasons

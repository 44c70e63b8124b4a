"""chdb opens one data path per process: every ClickHouse test of the session shares this one."""

from __future__ import annotations

import functools
import tempfile


@functools.cache
def chdb_path() -> str:
    return tempfile.mkdtemp(prefix="mastra-chdb-")

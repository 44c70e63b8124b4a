"""The conformance suite: the same behavioural tests for every backend (and third-party adapters).

Subclass a suite in a pytest module and provide a ``backend`` fixture — an initialized store whose
``get_store(domain)`` returns empty domain stores — and pytest runs every test against it::

    @pytest.fixture
    async def backend():
        async with LibSQLStore(id="t", url=":memory:") as store:
            yield store

    class TestMemory(MemoryConformance):
        pass

The ``*Values`` classes check the value contract with property-based inputs (hypothesis);
``mastra_storage.testing.suites`` has both together per domain (``TestMemory``…), ready to import.

Requires pytest, pytest-asyncio (``asyncio_mode = "auto"``) and hypothesis.
"""

from .agents import AgentsConformance
from .composite import CompositeConformance
from .memory import MemoryConformance
from .observability import ObservabilityConformance
from .scores import ScoresConformance
from .values import (
    AgentsValues,
    MemoryValues,
    ObservabilityValues,
    ScoresValues,
    TraceFilterValues,
    WorkflowsValues,
)
from .workflows import WorkflowsConformance

__all__ = [
    "AgentsConformance",
    "AgentsValues",
    "CompositeConformance",
    "MemoryConformance",
    "MemoryValues",
    "ObservabilityConformance",
    "ObservabilityValues",
    "ScoresConformance",
    "ScoresValues",
    "TraceFilterValues",
    "WorkflowsConformance",
    "WorkflowsValues",
]

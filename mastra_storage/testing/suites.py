"""The whole suite per domain, behaviour and value contract together, ready for pytest to collect.

Import the ones a backend serves into a test module that defines the ``backend`` fixture (and
``make_backend`` for ``TestComposite``)::

    from mastra_storage.testing.suites import TestMemory, TestScores  # noqa: F401 (collected by pytest)

or, for a backend that serves every domain, all of them (``__all__`` lists them)::

    from mastra_storage.testing.suites import *  # noqa: F403
"""

from __future__ import annotations

from .agents import AgentsConformance
from .composite import CompositeConformance
from .memory import MemoryConformance
from .observability import ObservabilityConformance
from .scores import ScoresConformance
from .values import AgentsValues, MemoryValues, ObservabilityValues, ScoresValues, TraceFilterValues, WorkflowsValues
from .workflows import WorkflowsConformance

__all__ = ["TestAgents", "TestComposite", "TestMemory", "TestObservability", "TestScores", "TestWorkflows"]


class TestMemory(MemoryConformance, MemoryValues):
    """Threads, messages and resources."""


class TestWorkflows(WorkflowsConformance, WorkflowsValues):
    """Workflow run snapshots."""


class TestScores(ScoresConformance, ScoresValues):
    """Evaluation scores."""


class TestObservability(ObservabilityConformance, ObservabilityValues, TraceFilterValues):
    """Spans and traces."""


class TestAgents(AgentsConformance, AgentsValues):
    """Stored agents and their versions."""


class TestComposite(CompositeConformance):
    """MastraStorage over the backend (needs the ``make_backend`` fixture too)."""

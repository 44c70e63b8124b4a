"""The five storage domains, one abstract base each: the public types every backend implements.

Each base (``MemoryStorage``, ``WorkflowsStorage``, ``ScoresStorage``, ``ObservabilityStorage``,
``AgentsStorage``) owns its public ``async`` methods — keyword-only signatures, docstrings that carry
the contract, input validation, error wrapping (``@operation``) and result shaping — written once.
A backend subclasses it and implements small protected hooks with its own hand-written queries.
A third-party adapter does the same and runs ``mastra_storage.testing`` against itself.

Why bases and not ``typing.Protocol``s: the contract is code (validation and shaping), not only
signatures, and a Protocol would have repeated every signature once more. ``DomainStore`` is the
lifecycle base under them all (``init``, ``close``, ``dangerously_clear_all``, ``prune``); a store
given to ``MastraStorage`` for a domain must be one.

The rules of each domain (checks, merges, clone plans) live beside its base, in ``*_rules.py``.
"""

from typing import Literal

from ..core.lifecycle import DomainStore
from .agents import AgentsStorage
from .memory import MemoryStorage
from .observability import ObservabilityStorage
from .scores import ScoresStorage
from .workflows import WorkflowsStorage

__all__ = [
    "DOMAINS",
    "AgentsStorage",
    "DomainName",
    "DomainStore",
    "MemoryStorage",
    "ObservabilityStorage",
    "ScoresStorage",
    "WorkflowsStorage",
]

DomainName = Literal["memory", "workflows", "scores", "observability", "agents"]
DOMAINS: tuple[DomainName, ...] = ("memory", "workflows", "scores", "observability", "agents")

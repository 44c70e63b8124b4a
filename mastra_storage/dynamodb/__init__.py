"""DynamoDB backend (aioboto3): all five domains in one table — ``pip install mastra-storage[dynamodb]``."""

from .agents import AgentsDynamoDB
from .memory import MemoryDynamoDB
from .observability import ObservabilityDynamoDB
from .scores import ScoresDynamoDB
from .store import DynamoDBStore
from .table import TableSetupError
from .workflows import WorkflowsDynamoDB

__all__ = [
    "AgentsDynamoDB",
    "DynamoDBStore",
    "MemoryDynamoDB",
    "ObservabilityDynamoDB",
    "ScoresDynamoDB",
    "TableSetupError",
    "WorkflowsDynamoDB",
]

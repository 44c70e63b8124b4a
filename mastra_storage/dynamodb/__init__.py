"""DynamoDB backend (aioboto3): all five domains in one table — ``pip install mastra-storage[dynamodb]``."""

from .memory import MemoryDynamoDB
from .scores import ScoresDynamoDB
from .store import DynamoDBStore
from .workflows import WorkflowsDynamoDB

__all__ = ["DynamoDBStore", "MemoryDynamoDB", "ScoresDynamoDB", "WorkflowsDynamoDB"]

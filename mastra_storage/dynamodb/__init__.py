"""DynamoDB backend (aioboto3): all five domains in one table — ``pip install mastra-storage[dynamodb]``."""

from .memory import MemoryDynamoDB
from .store import DynamoDBStore

__all__ = ["DynamoDBStore", "MemoryDynamoDB"]

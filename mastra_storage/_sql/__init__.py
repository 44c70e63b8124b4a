"""What the libSQL and PostgreSQL backends share: Mastra's table schemas, pagination and query building."""

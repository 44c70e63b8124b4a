"""Test-only protocol stand-ins (each says so in its docstring): a Hrana-over-HTTP server for the
remote libSQL path and a ClickHouse-HTTP server over the embedded chdb engine."""

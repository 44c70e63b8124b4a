"""What truly spans domains and backends: lifecycle and error wrapping, retention plans, paging
windows, the JSON/timestamp codec and the value contract's validation primitives."""

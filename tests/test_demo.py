"""``make demo`` works, and works again on the same file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_twice(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'demo.db'}"
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "mastra_storage.demo", "--url", url], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert "status 'success'" in outputs[0] and "1 thread(s) for alice" in outputs[0]
    assert "2 thread(s) for alice" in outputs[1] and "version 3 of 3" in outputs[1]

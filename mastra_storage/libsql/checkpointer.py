"""WAL checkpoints off the writer's path.

SQLite checkpoints a WAL database on the committing connection once the log passes 1,000 pages:
the commit that crosses it copies the log into the database file and syncs both (two fdatasyncs,
~8 ms each on the machines measured), and every caller in that group waits for it. The engine
turns that off on its writer and checkpoints on a thread of its own instead, in PASSIVE mode, which
never waits for the writer or the readers: writes go on while the file is copied and synced
(persisting 5.5 KB snapshots with 16 callers, the writer's groups took 2.0 → 1.0 ms).

A PASSIVE checkpoint cannot restart the log while writes keep coming, so past ``RESTART_FRAMES``
the thread runs a RESTART checkpoint instead: it waits for the writer's group in progress, holds
new writes back while it copies what is left and syncs, waits for readers still on the log, and
the next write starts the log from the beginning. A reader that holds on longer than
``RESTART_WAIT_MS`` (a long read in another process) lets writes go on; the restart is tried again
once the log has grown as much again. Durability is unchanged: commits are not synced
(``synchronous = NORMAL``) and checkpoints are, as before.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

CHECKPOINT_FRAMES = 1000  # SQLite's own autocheckpoint threshold
RESTART_FRAMES = 4000  # the log's bound: 16 MB at SQLite's default 4 KB pages
BACKSTOP_FRAMES = 2 * RESTART_FRAMES  # the writer checkpoints past this if the thread is gone
RESTART_WAIT_MS = 250  # the longest a restart holds writes back waiting for a reader


class WalCheckpointer:
    """The checkpoint thread of one database file; attached to its writer connection."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._due = threading.Event()
        self._stopping = False
        self._frames = 0  # the log's size after the writer's last commit
        self._copied = 0  # frames copied into the database file by the last checkpoint
        self._restart_at = RESTART_FRAMES
        self.runs = 0  # checkpoints that copied something (tests read it)
        self._thread = threading.Thread(target=self._run, name="mastra-sqlite-checkpointer", daemon=True)
        self._thread.start()

    def attach(self, db: Any) -> None:
        """Has the writer connection's commits report the log size here (a WAL hook replaces SQLite's
        own checkpoint-on-commit, which is one)."""
        db.set_wal_hook(self._committed)

    def backstop(self, db: Any) -> None:
        """On the writer, between groups: should the thread have died, checkpoints the log there
        once it passes ``BACKSTOP_FRAMES``, as SQLite would have on commit."""
        if self._frames >= BACKSTOP_FRAMES and not self._thread.is_alive():
            import apsw

            with contextlib.suppress(apsw.Error):  # busy: the next group tries again
                db.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)

    def _committed(self, db: Any, name: str, frames: int) -> int:
        # Runs inside the writer's COMMIT: it only notes the size and wakes the thread.
        if frames < self._frames:  # the log was restarted
            self._copied = 0
            self._restart_at = RESTART_FRAMES
        self._frames = frames
        if frames - self._copied >= CHECKPOINT_FRAMES or frames >= self._restart_at:
            self._due.set()
        return 0  # SQLITE_OK

    def stop(self) -> None:
        """Ends the thread (after a checkpoint in progress) and closes its connection."""
        self._stopping = True
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        import apsw

        db = None
        try:
            while True:
                self._due.wait()
                self._due.clear()
                if self._stopping:
                    return
                restart = self._frames >= self._restart_at
                try:
                    if db is None:
                        db = apsw.Connection(self._path)
                        db.set_busy_timeout(RESTART_WAIT_MS)
                        db.execute("PRAGMA journal_mode").fetchall()  # reads the header: sees WAL mode
                    mode = apsw.SQLITE_CHECKPOINT_RESTART if restart else apsw.SQLITE_CHECKPOINT_PASSIVE
                    _, copied = db.wal_checkpoint(mode=mode)
                except apsw.Error:  # busy: a reader held on, or another process's checkpoint ran
                    copied = self._copied
                if restart:
                    self._restart_at = self._frames + RESTART_FRAMES  # back to RESTART_FRAMES once it restarts
                if copied > self._copied:
                    self.runs += 1
                self._copied = max(copied, 0)
        finally:
            if db is not None:
                db.close()

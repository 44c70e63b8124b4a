"""WAL checkpoints off the writer's path.

SQLite checkpoints a WAL database on the committing connection once the log passes 1,000 pages:
the commit that crosses it copies the log into the database file and syncs both (two fdatasyncs,
~8 ms each on the machines measured), and every caller in that group waits for it. The engine
replaces that with a WAL hook on its writer and checkpoints on a thread of its own, in PASSIVE
mode, which never waits for the writer or the readers: writes go on while the file is copied and
synced (persisting 5.5 KB snapshots with 16 callers, the writer's groups took 2.0 → 1.0 ms).

A PASSIVE checkpoint cannot restart the log while writes keep coming, so past ``RESTART_FRAMES``
the thread runs a RESTART checkpoint instead: it waits for the writer's group in progress, holds
new writes back while it copies what is left and syncs, waits for readers still on the log, and
the next write starts the log from the beginning. Writes faster than the disk syncs can outrun the
thread, so past ``BOUND_FRAMES`` the writer waits for the thread's checkpoint in progress and
truncates the log itself between groups (also what keeps the log bounded should the thread die).
A reader that holds on longer than ``RESTART_WAIT_MS`` (a long read in another process) lets
writes go on; either restart is tried again once the log has grown by ``RESTART_FRAMES`` more.
Durability is unchanged: commits are not synced (``synchronous = NORMAL``) and checkpoints are,
as before.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

CHECKPOINT_FRAMES = 1000  # SQLite's own autocheckpoint threshold
RESTART_FRAMES = 4000  # the thread restarts the log past this: 16 MB at SQLite's default 4 KB pages
BOUND_FRAMES = 2 * RESTART_FRAMES  # the writer truncates it past this
RESTART_WAIT_MS = 250  # the longest a restart holds writes back waiting for a reader


class WalCheckpointer:
    """The checkpoint thread of one database file; attached to its writer connection."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._due = threading.Event()
        self._busy = threading.Lock()  # one checkpoint at a time: the thread's or the writer's
        self._stopping = False
        self._frames = 0  # the log's size after the writer's last commit
        self._copied = 0  # frames copied into the database file by the last checkpoint
        self._restart_at = RESTART_FRAMES  # where the thread restarts the log
        self._bound_at = BOUND_FRAMES  # where the writer does
        self.runs = 0  # checkpoints of the thread that copied something (tests read it)
        self._thread = threading.Thread(target=self._run, name="mastra-sqlite-checkpointer", daemon=True)
        self._thread.start()

    def attach(self, db: Any) -> None:
        """Has the writer connection's commits report the log size here (a WAL hook replaces SQLite's
        own checkpoint-on-commit, which is one)."""
        db.set_wal_hook(self._committed)

    def _committed(self, db: Any, name: str, frames: int) -> int:
        # Runs inside the writer's COMMIT: it only notes the size and wakes the thread.
        if frames < self._frames:  # the log was restarted
            self._copied = 0
            self._restart_at, self._bound_at = RESTART_FRAMES, BOUND_FRAMES
        self._frames = frames
        if frames - self._copied >= CHECKPOINT_FRAMES or frames >= self._restart_at:
            self._due.set()
        return 0  # SQLITE_OK

    def bound(self, db: Any) -> None:
        """On the writer, between groups: truncates a log grown past ``BOUND_FRAMES``, after the
        thread's checkpoint in progress."""
        if self._frames < self._bound_at:
            return
        import apsw

        with self._busy, contextlib.suppress(apsw.Error):  # e.g. another process's checkpoint: later
            self._checkpoint(db, apsw.SQLITE_CHECKPOINT_TRUNCATE)
        self._bound_at = self._frames + RESTART_FRAMES  # back to BOUND_FRAMES once the log restarts

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
                with self._busy:
                    try:
                        if db is None:
                            db = apsw.Connection(self._path)
                            db.execute("PRAGMA journal_mode").fetchall()  # reads the header: sees WAL mode
                        if restart:
                            copied = self._checkpoint(db, apsw.SQLITE_CHECKPOINT_RESTART)
                        else:
                            copied = db.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)[1]
                    except apsw.Error:  # busy: another process's checkpoint ran
                        copied = self._copied
                if restart:
                    self._restart_at = self._frames + RESTART_FRAMES  # back to RESTART_FRAMES once it restarts
                if copied > self._copied:
                    self.runs += 1
                self._copied = max(copied, 0)
        finally:
            if db is not None:
                db.close()

    def _checkpoint(self, db: Any, mode: int) -> int:
        """A RESTART or TRUNCATE checkpoint on ``db`` that waits at most ``RESTART_WAIT_MS`` for a
        reader; the frames copied (as before it, if a reader held on)."""
        import apsw

        timeout = db.execute("PRAGMA busy_timeout").fetchall()[0][0]
        db.set_busy_timeout(RESTART_WAIT_MS)
        try:
            return int(db.wal_checkpoint(mode=mode)[1])
        except apsw.BusyError:  # a reader held on: writes go on
            return self._copied
        finally:
            db.set_busy_timeout(timeout)

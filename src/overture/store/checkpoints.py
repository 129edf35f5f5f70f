"""SQLite's WAL checkpoints, moved off the event loop.

In WAL mode a commit appends the changed pages to the `-wal` file; a checkpoint copies them
back into the database file and syncs it. By default SQLite checkpoints inside the commit
that takes the WAL past 1,000 pages, so that commit's caller pays for it: for the runtime
that is the recorder, on the event loop, and with every decision recording its
propositions one commit in ten or so carried a checkpoint, ~6 ms during which the node
answered nothing (measured with `python -m benchmarks.inprocess`: transactions' p90 went
from 8.6 ms to 2.9 ms, and the loop's time in transactions fell by a sixth, ~17 µs a
decision, with the recorder's automatic checkpoint off).

So the recorder's connection turns the automatic checkpoint off, and a `Checkpointer`
thread checkpoints through a connection of its own while commits come in. sqlite3 lets go
of the interpreter lock while SQLite works, so the copy and the sync happen beside the
loop, not in it:

- every `interval` after commits, a PASSIVE checkpoint copies what it can without waiting
  for anyone (another process's checkpoint in progress makes it a no-op);
- a PASSIVE checkpoint never starts the WAL file over, though: SQLite does that when a
  write begins after a checkpoint that copied everything, and commits keep landing while
  this thread copies (the file grew to 286 MB in 4 s of steady commits). So once the file
  is past `limit_bytes`, the thread takes the writers' turn (the advisory lock file the
  recorders of every process take before they write, history/recorder.py), which waits
  for the write in progress and holds the next ones off, and a TRUNCATE checkpoint copies
  what is left (little: the passive ones ran) and empties the file. The recorders wait
  for their turn without blocking their loops, as they do for each other. (Without the
  turn, SQLite's own wait for the write lock almost never found the gap between two of
  the recorder's transactions.)

If the thread cannot open its connection, the constructor raises and the recorder keeps
SQLite's automatic checkpoint. Other connections keep SQLite's default too.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading

log = logging.getLogger("overture.store")

# How often the thread looks for new commits. At ~2,000 decisions/s (a few WAL pages each)
# a tenth of a second is ~1,000 pages: as often as SQLite's own automatic checkpoint.
INTERVAL_SECONDS = 0.1
# The WAL's size past which it is emptied: 4,096 pages of 4 KiB (SQLite's default page).
LIMIT_BYTES = 16 << 20
# How long a TRUNCATE checkpoint waits for the write in progress (and readers) to end.
TRUNCATE_WAIT_MS = 1000


class Checkpointer:
    """A daemon thread checkpointing `path`'s WAL after commits (see the module's doc)."""

    def __init__(
        self,
        path: str,
        turn: str,
        interval: float = INTERVAL_SECONDS,
        limit_bytes: int | None = None,
    ) -> None:
        """`turn`: the writers' advisory lock file (see the module's doc)."""
        self.path = path
        self.turn = turn
        self.wal = path + "-wal"
        self.interval = interval
        self.limit_bytes = LIMIT_BYTES if limit_bytes is None else limit_bytes
        self.commits = 0  # bumped by the writer after each commit (no lock: a plain int)
        self.checkpoints = 0  # passive checkpoints that copied everything they found
        self.truncations = 0  # times the WAL file was emptied
        self._done = 0  # commits covered by the last complete checkpoint
        self._stop = threading.Event()
        # opened here, so that a failure leaves the caller on SQLite's own checkpoints
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._thread = threading.Thread(target=self._run, name="overture-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A commit happened: its pages are checkpointed within `interval`."""
        self.commits += 1

    def close(self) -> None:
        """Stop the thread, after one last checkpoint of what is pending."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = self._conn
        try:
            while not self._stop.wait(self.interval):
                self._checkpoint(conn)
            self._checkpoint(conn)
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        commits = self.commits
        if commits == self._done:
            return
        try:
            if self._wal_size() > self.limit_bytes:
                busy = self._truncate(conn)
                self.truncations += not busy
            else:
                busy = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0]
        except sqlite3.Error as exc:  # the file went away, say: the next turn tries again
            log.debug("checkpoint of %s did not run: %s", self.path, exc)
            return
        if not busy:
            self._done = commits
            self.checkpoints += 1

    def _truncate(self, conn: sqlite3.Connection) -> int:
        """Empty the WAL file in the writers' turn: 0, or 1 if a reader held it."""
        with open(self.turn, "a") as turn:
            fcntl.flock(turn, fcntl.LOCK_EX)  # waits in this thread, not in a loop
            try:
                conn.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")  # readers, others
                try:
                    busy: int = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                finally:
                    conn.execute("PRAGMA busy_timeout=0")
            finally:
                fcntl.flock(turn, fcntl.LOCK_UN)
        return busy

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self.wal)
        except OSError:
            return 0

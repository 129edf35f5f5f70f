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
thread runs a PASSIVE checkpoint through a connection of its own a few times a second
while commits come in. sqlite3 lets go of the interpreter lock while SQLite works, so the
copy and the sync happen beside the loop, not in it. A PASSIVE checkpoint never waits for
readers or writers (another process's checkpoint in progress makes this one a no-op), and
a later writer starts the WAL file over once a checkpoint has copied everything. Other
connections keep SQLite's default, so a WAL this thread did not keep short (it stopped,
say) is still checkpointed by them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("overture.store")

# How often the thread looks for new commits. At ~2,000 decisions/s (a few WAL pages each)
# a tenth of a second is ~1,000 pages: as often as SQLite's own automatic checkpoint.
INTERVAL_SECONDS = 0.1


class Checkpointer:
    """A daemon thread checkpointing `path`'s WAL after commits (see the module's doc)."""

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self.commits = 0  # bumped by the writer after each commit (no lock: a plain int)
        self.checkpoints = 0
        self._done = 0  # commits covered by the last checkpoint
        self._stop = threading.Event()
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
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:  # the file's own writers keep checkpointing then
            log.warning("no checkpoint thread for %s: %s", self.path, exc)
            return
        try:
            conn.execute("PRAGMA busy_timeout=0")
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
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # busy, or the file went away: the next turn tries again
            log.debug("checkpoint of %s did not run: %s", self.path, exc)
            return
        self._done = commits
        self.checkpoints += 1

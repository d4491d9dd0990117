"""The tree builds' queue, shared by the page and the SQL functions: bounded, and kept only while someone waits.

A page still computing reloads itself every few seconds, asking again; a client that gave up stops asking. So
a build is keyed by its parameters (concurrent requests share it), the most recently asked runs first, one
nobody has asked for in ``ABANDONED`` seconds is dropped while it still waits its turn (a running one can't be
stopped halfway through scipy, and its tree is kept), and at most ``MAX_PER_DATABASE`` builds for a database
and ``MAX_QUEUED`` in all wait or run at once: beyond that a request is told at once that the server is busy
(the page reloads itself and asks again). Their
matrices share one memory guard (:mod:`..engine.memory`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

ABANDONED = 15.0  # seconds unasked after which a waiting build is dropped (a waiting page asks every 2 s)
MAX_PER_DATABASE = 4
MAX_QUEUED = 8
WORKERS = 2  # builds running at once: each uses every core through BLAS and scipy


class Busy(Exception):
    """Too many builds wait already; the message says so in words."""


@dataclass
class _Job:
    key: Hashable
    database: str
    make: Callable[[], object]
    asked: float
    future: Future = field(default_factory=Future)
    started: bool = False


class Builds:
    """The queue and its worker threads (started on the first build)."""

    def __init__(self, workers: int = WORKERS, clock: Callable[[], float] = time.monotonic):
        self.workers = workers
        self.clock = clock
        self.dropped = 0  # builds dropped unasked, for the tests and the log
        self._jobs: dict[Hashable, _Job] = {}
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, key: Hashable, database: str, make: Callable[[], object]) -> Future:
        """The build of ``key`` (its future), queued unless one is already; Busy where the bounds are reached."""
        with self._changed:
            now = self.clock()
            job = self._jobs.get(key)
            if job is not None:
                job.asked = now  # asked again: kept
            self._drop_abandoned(now)
            if job is not None:
                return job.future
            here = sum(j.database == database for j in self._jobs.values())
            if here >= MAX_PER_DATABASE or len(self._jobs) >= MAX_QUEUED:
                raise Busy(
                    f"{len(self._jobs)} clusterings are being computed already, {here} of them for this database "
                    "(the most this server takes at once)"
                )
            job = _Job(key, database, make, now)
            self._jobs[key] = job
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name="imagecluster-build", daemon=True)
                thread.start()
                self._threads.append(thread)
            self._changed.notify()
            return job.future

    def waiting(self) -> list[Hashable]:
        """The keys of the builds waiting their turn, the next first."""
        with self._changed:
            return [j.key for j in sorted(self._queued(), key=lambda j: -j.asked)]

    def _queued(self) -> list[_Job]:
        return [j for j in self._jobs.values() if not j.started]

    def _drop_abandoned(self, now: float) -> None:
        for job in self._queued():
            if now - job.asked > ABANDONED:
                del self._jobs[job.key]
                job.future.cancel()
                self.dropped += 1

    def _next(self) -> _Job:
        with self._changed:
            while True:
                self._drop_abandoned(self.clock())
                queued = self._queued()
                if queued:
                    job = max(queued, key=lambda j: j.asked)  # the most recently asked: someone waits for it
                    job.started = True
                    return job
                self._changed.wait(timeout=ABANDONED)

    def _work(self) -> None:
        while True:
            job = self._next()
            if job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(job.make())
                except BaseException as e:  # noqa: BLE001 (the requests waiting on it get it)
                    job.future.set_exception(e)
            with self._changed:
                self._jobs.pop(job.key, None)
                self._changed.notify_all()


BUILDS = Builds()


def tree_of(selection) -> Future:
    """The build of a :class:`..api.Selection`'s tree on ``BUILDS``: keyed by the tree and the sim it is built
    for, counted against the selection's database file."""
    return BUILDS.submit((selection.tree_key, selection.params.sim), selection.tree_key[0][0], selection.tree)

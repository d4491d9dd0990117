"""The tree builds' queue, shared by the page and the SQL functions: bounded, and kept only while someone waits.

A page still computing reloads itself every few seconds, asking again; a client that gave up stops asking. So
a build is keyed by its parameters (concurrent requests share it), the most recently asked runs first, one
nobody has asked for in ``ABANDONED`` seconds is dropped while it still waits its turn (a running one can't be
stopped halfway through scipy, and its tree is kept), and at most ``MAX_PER_DATABASE`` builds for a database
and ``MAX_QUEUED`` in all wait or run at once: beyond that a request is told at once that the server is busy
(the page reloads itself and asks again). Their
matrices share one memory guard (:mod:`..engine.memory`).

While a page waits it shows where its build stands (:meth:`Builds.progress`): its place in the queue, or how
long it has run and about how long it has left, estimated from the builds this server finished before (their
seconds per photo, scaled as photos squared: an estimate, not a count of work done).
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
# Seconds per photo squared before this server has finished a build to learn from: 20,000 photos of real
# fingerprints take ~4 s at the shipped defaults on 2 cores (docs/benchmarks.md), 10 ms at 1,000.
DEFAULT_RATE = 1e-8


class Busy(Exception):
    """Too many builds wait already; the message says so in words."""


@dataclass
class _Job:
    key: Hashable
    database: str
    make: Callable[[], object]
    asked: float
    photos: int = 0
    future: Future = field(default_factory=Future)
    started: bool = False
    started_at: float = 0.0


@dataclass(frozen=True)
class Progress:
    """Where one build stands, as the waiting page tells it."""

    ahead: int  # builds that run before it (0 once it runs)
    running: bool
    elapsed: float  # seconds it has run
    estimate: float  # seconds it should take in all

    def describe(self) -> str:
        if not self.running:
            others = f"{self.ahead} other clustering{'s' if self.ahead != 1 else ''}"
            return f"Waiting for {others} to finish first."
        left = max(0.0, self.estimate - self.elapsed)
        share = min(0.95, self.elapsed / self.estimate) if self.estimate > 0 else 0.0
        return (
            f"Computing for {self.elapsed:.0f} s, about {share:.0%} done, about {_seconds(left)} left "
            "(estimated from the clusterings this server finished before)."
        )


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.0f} min"


class Builds:
    """The queue and its worker threads (started on the first build)."""

    def __init__(self, workers: int = WORKERS, clock: Callable[[], float] = time.monotonic):
        self.workers = workers
        self.clock = clock
        self.dropped = 0  # builds dropped unasked, for the tests and the log
        self.rate = DEFAULT_RATE  # seconds per photo squared, from the last build of 1,000 photos or more
        self._jobs: dict[Hashable, _Job] = {}
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []

    def submit(self, key: Hashable, database: str, make: Callable[[], object], photos: int = 0) -> Future:
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
            job = _Job(key, database, make, now, photos)
            self._jobs[key] = job
            while len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name="imagecluster-build", daemon=True)
                thread.start()
                self._threads.append(thread)
            self._changed.notify()
            return job.future

    def progress(self, key: Hashable) -> Progress | None:
        """Where the build of ``key`` stands, or None when there is none (finished, or dropped)."""
        with self._changed:
            job = self._jobs.get(key)
            if job is None:
                return None
            estimate = self.rate * job.photos**2
            if job.started:
                return Progress(0, True, self.clock() - job.started_at, estimate)
            ahead = sum(1 for j in self._jobs.values() if j.started or j.asked > job.asked)
            return Progress(ahead, False, 0.0, estimate)

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
                    job.started, job.started_at = True, self.clock()
                    return job
                self._changed.wait(timeout=ABANDONED)

    def _work(self) -> None:
        while True:
            job = self._next()
            if job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(job.make())
                    if job.photos >= 1000:  # smaller ones are mostly overhead: no guide to a large one
                        self.rate = max(1e-12, (self.clock() - job.started_at) / job.photos**2)
                except BaseException as e:  # noqa: BLE001 (the requests waiting on it get it)
                    job.future.set_exception(e)
            with self._changed:
                self._jobs.pop(job.key, None)
                self._changed.notify_all()


BUILDS = Builds()


def tree_of(selection) -> Future:
    """The build of a :class:`..api.Selection`'s tree on ``BUILDS``: keyed by the tree and the sim it is built
    for, counted against the selection's database file."""
    return BUILDS.submit(
        build_key(selection), selection.tree_key[0][0], selection.tree, photos=len(selection.library.ids)
    )


def build_key(selection) -> Hashable:
    """What a build is known by on the queue: the tree and the sim it is built for."""
    return (selection.tree_key, selection.params.sim)

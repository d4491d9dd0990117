"""The memory clusterings may take together: distance matrices are gigabytes, and builds run side by side.

The plugin builds trees on two threads and SQL functions on Datasette's; each used to check its own matrices
against the machine alone, so two builds that each fitted could together exceed it. Builds now hold their
matrices' memory here while they exist.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from ..errors import ClusterError

SHARE = 0.6  # of physical memory, for the distance matrices of every clustering running at once


class MemoryGuard:
    """The memory the distance matrices of clusterings running at once may take together, ``share`` of the
    machine's: a build whose matrices don't fit beside the others' waits for them to finish (one alone that
    never could is refused), so concurrent builds can't pass one by one a guard they exceed together."""

    def __init__(self, share: float):
        self.share = share
        self.held = 0
        self.peak = 0  # the most held at once (the tests read it)
        self._changed = threading.Condition()

    def budget(self) -> float | None:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * self.share
        except (ValueError, OSError, AttributeError):
            return None

    @contextmanager
    def hold(self, needed: int, photos: int) -> Iterator[None]:
        budget = self.budget()
        if budget is not None and needed > budget:
            raise ClusterError(
                f"clustering {photos:,} photos needs about {needed / 2**30:.1f} GiB for the distance "
                f"matrix, more than this machine can spare ({budget / self.share / 2**30:.1f} GiB); "
                f"cluster a subset"
            )
        with self._changed:
            while budget is not None and self.held and self.held + needed > budget:
                self._changed.wait()
            self.held += needed
            self.peak = max(self.peak, self.held)
        try:
            yield
        finally:
            with self._changed:
                self.held -= needed
                self._changed.notify_all()


MEMORY = MemoryGuard(SHARE)


def matrices(n: int, count: int) -> AbstractContextManager:
    """Hold the memory of ``count`` condensed matrices of n photos (and linkage's copy) while they exist."""
    return MEMORY.hold((n * (n - 1) // 2) * 8 * (count + 1), n)

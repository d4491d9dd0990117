"""Which OpenBLAS kernels numpy's matrix products use: the AVX-512 ones where the CPU has them.

numpy's bundled OpenBLAS chooses its kernels from the CPU once, when numpy
loads it. On AMD CPUs with AVX-512 (Zen 4 and later) it has been seen to
choose its Haswell (AVX2) kernels: 226 against 428 GFLOP/s for a 4096-cube
float32 product with ``OPENBLAS_CORETYPE=SkylakeX``. The clustering's pass is
such products, so :func:`choose_kernels` sets that variable before numpy loads,
where it is safe: the CPU (as the kernel reports it) has every AVX-512 subset
the SkylakeX kernels use, it is an AMD CPU (Intel CPUs with AVX-512 already get
SkylakeX or newer kernels, which SkylakeX would undo), and nobody has set the
variable. It is a no-op for a numpy built on another BLAS, and for every CPU
without AVX-512, such as the Zen 3 machines these figures were taken on.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

VARIABLE = "OPENBLAS_CORETYPE"
AVX512 = "SkylakeX"
# What the SkylakeX kernels execute: AVX-512 Foundation, Byte/Word, Doubleword/Quadword, Vector Length, Conflict.
NEEDED = frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"})
VENDORS = frozenset({"AuthenticAMD", "HygonGenuine"})


def _processor(cpuinfo: str) -> tuple[str, set[str]]:
    """The vendor and flags of the first processor in ``/proc/cpuinfo``'s text: the first speaks for all."""
    vendor = ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "vendor_id":
            vendor = value.strip()
        elif key.strip() == "flags":
            return vendor, set(value.split())
    return vendor, set()


def has_avx512(cpuinfo: str) -> bool:
    """Whether the CPU described by ``/proc/cpuinfo``'s text can run the SkylakeX kernels, whoever made it."""
    return NEEDED <= _processor(cpuinfo)[1]


def kernels_for(cpuinfo: str) -> str | None:
    """The OpenBLAS core type to ask for on a CPU described by ``/proc/cpuinfo``'s text, or None for its own choice."""
    vendor, flags = _processor(cpuinfo)
    return AVX512 if vendor in VENDORS and NEEDED <= flags else None


def choose_kernels(environ: MutableMapping[str, str] = os.environ, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """Set ``OPENBLAS_CORETYPE`` for this process (and the processes it starts) where :func:`kernels_for` says so.

    Only before numpy is loaded (OpenBLAS reads the variable once, then) and
    only when it is unset: a user's own choice stands. Returns what was set.
    """
    if VARIABLE in environ or "numpy" in sys.modules:
        return None
    try:
        chosen = kernels_for(cpuinfo.read_text())
    except OSError:  # not Linux: macOS's numpy uses Accelerate, Windows has no such file
        return None
    if chosen:
        environ[VARIABLE] = chosen
    return chosen


def loaded_kernels() -> str | None:
    """The core type of the OpenBLAS numpy loaded in this process (e.g. ``Haswell``), or None for another BLAS."""
    import numpy  # noqa: F401  (loads OpenBLAS)

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    paths = {line.split()[-1] for line in maps.splitlines() if "openblas" in line.rsplit("/", 1)[-1].lower()}
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            function = getattr(library, name, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return function().decode()
    return None

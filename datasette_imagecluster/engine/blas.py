"""Which OpenBLAS kernels numpy's matrix products use: the AVX-512 ones where the CPU has them.

:func:`choose_kernels` asks for them before numpy loads, on AMD CPUs with AVX-512 only, unless the
user chose.
In depth: docs/engine.md, "BLAS kernels".
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

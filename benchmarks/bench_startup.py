"""Start-up cost of what every command and decoder worker imports, against bare Python in the same run.

Each figure is the median of several fresh interpreters: wall time of ``python -c "import M"``
and the process's peak RSS. Bare ``python -c pass`` is the baseline.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

MODULES = (
    ("importer.cli", "the imagecluster command"),
    ("importer.pipeline", "an import's parent process, before the model"),
    ("importer.decode", "each decoder worker"),
    ("datasette_imagecluster", "the plugin's hooks module"),
)


def _wall(code: str) -> float:
    """Wall seconds of one fresh interpreter running ``code``."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def _rss(code: str) -> float:
    """Peak RSS (MiB) of a fresh interpreter after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.split()[-1]) / 1024


def run(quick: bool) -> list[tuple[str, str]]:
    repeat = 5 if quick else 11
    base = statistics.median(_wall("pass") for _ in range(repeat))
    rows = [("python -c pass (baseline)", f"{base * 1000:.0f} ms, {_rss('pass'):.0f} MiB")]
    for module, what in MODULES:
        wall = statistics.median(_wall(f"import {module}") for _ in range(repeat))
        rows.append(
            (
                f"import {module} ({what})",
                f"{wall * 1000:.0f} ms = {wall / base:.1f}x bare, {_rss(f'import {module}'):.0f} MiB",
            )
        )
    return rows

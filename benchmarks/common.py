"""Shared helpers: machine facts, medians, peak memory of a child process, test data."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(os.environ.get("IMAGECLUSTER_BENCH_DATA", Path(__file__).resolve().parent / ".data"))


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = open("/proc/cpuinfo").read()
        avx512 = "avx512f" in flags
    except OSError:
        avx512 = False
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import numpy
    import scipy

    versions = f"Python {platform.python_version()}, numpy {numpy.__version__}, scipy {scipy.__version__}"
    return f"{cpu}, {os.cpu_count()} cores{' (AVX-512)' if avx512 else ''}, {memory:.0f} GiB; {versions}"


def steal() -> float:
    """Seconds of CPU time this virtual machine's host gave to other guests since boot, all cores together
    (``/proc/stat``; 0 where there is none): what noisy neighbours took from a run, read before and after."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else 0.0


def median_time(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# Runs a command and writes its wall time (s) and peak RSS (KiB, from wait4) to the file named first: a small
# process of its own starts the measured one, whose peak then cannot include this benchmark's (see run_measured).
_LAUNCHER = """
import os, subprocess, sys, threading, time
start = time.perf_counter()
process = subprocess.Popen(sys.argv[3:])
tree_peak = 0
def tree_rss():
    parents, rss = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
                rss[int(entry)] = int(open(f"/proc/{entry}/statm").read().split()[1])
                parents[int(entry)] = int(stat[1])
            except (OSError, IndexError, ValueError):
                pass
    tree, grew = {process.pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sum(rss.get(p, 0) for p in tree) * os.sysconf("SC_PAGE_SIZE") // 1024
def sample():
    global tree_peak
    while process.poll() is None:
        tree_peak = max(tree_peak, tree_rss())
        time.sleep(0.05)
if sys.argv[2] == "tree":
    threading.Thread(target=sample, daemon=True).start()
_, status, usage = os.wait4(process.pid, 0)
peak = tree_peak if sys.argv[2] == "tree" else usage.ru_maxrss
open(sys.argv[1], "w").write(f"{time.perf_counter() - start} {peak}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(args: list[str], env: dict | None = None, tree: bool = False) -> tuple[float, float, str]:
    """Run a command; its wall time in seconds, its own peak RSS in MiB, and its stdout.

    ``os.wait4`` gives the resource usage of that one process (not of every
    child this benchmark ever ran, as RUSAGE_CHILDREN would). Linux counts in
    a process's peak the peak of the process it was started from (at exec), so
    the command is started by a small launcher, not by this benchmark, whose
    own memory (gigabytes of test data) would otherwise show as the command's.
    With ``tree``, the peak is of the RSS of the command and all its processes together (the importer's
    decoders), sampled every 50 ms from /proc.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as peak:
        launcher = [sys.executable, "-c", _LAUNCHER, peak.name, "tree" if tree else "own", *args]
        status = subprocess.call(launcher, stdout=out, stderr=err, env={**os.environ, **(env or {})})
        out.seek(0)
        err.seek(0)
        if status != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{err.read().decode()}")
        wall, kib = Path(peak.name).read_text().split()
        return float(wall), int(kib) / 1024, out.read().decode()


def cold_cluster(db: Path, args: list[str], repeat: int) -> tuple[list[float], float, list[float], str]:
    """``imagecluster cluster DB ARGS`` in a fresh process, ``repeat`` times: the wall times, the largest peak
    RSS, the CPU time the host gave other guests during each run (both cores together) and the last output."""
    walls, peaks, stolen, out = [], [], [], ""
    for _ in range(repeat):
        before = steal()
        wall, peak, out = run_measured([sys.executable, "-m", "importer", "cluster", str(db), *args])
        stolen.append(steal() - before)
        walls.append(wall)
        peaks.append(peak)
    return walls, max(peaks), stolen, out


def python_measured(code: str, *args: str) -> tuple[float, float, str]:
    """Run Python code in a fresh process (so its peak memory is its own)."""
    return run_measured([sys.executable, "-c", code, *args])


def camera_photos(count: int, size: tuple[int, int] = (4000, 3000), name: str = "camera") -> Path:
    """``count`` camera-size JPEGs with EXIF capture times, made once and kept in DATA."""
    folder = DATA / f"{name}-{size[0]}x{size[1]}"
    folder.mkdir(parents=True, exist_ok=True)
    existing = len(list(folder.glob("*.jpg")))
    rng = np.random.default_rng(0)
    w, h = size
    small = (w // 8, h // 8)
    for i in range(existing, count):
        # A smooth random scene upscaled (camera-like low noise), plus fine grain.
        base = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
        img = Image.fromarray(base).resize(small, Image.Resampling.BICUBIC).resize(size, Image.Resampling.BILINEAR)
        grain = rng.normal(0, 6, (h, w, 3))
        arr = np.clip(np.asarray(img, dtype=np.float32) + grain, 0, 255).astype(np.uint8)
        exif = Image.Exif()
        exif.get_ifd(0x8769)[0x9003] = f"2024:05:{1 + i // 1440 % 28:02d} {i // 60 % 24:02d}:{i % 60:02d}:00"
        Image.fromarray(arr).save(folder / f"IMG_{i:05d}.jpg", "JPEG", quality=90, exif=exif.tobytes())
    return folder


def structured_fingerprints(n: int, dims: int = 4096, group: int = 4, noise: float = 0.3, seed: int = 0):
    """Groups of near-duplicate fingerprints (bursts) plus unrelated photos, with timestamps.

    ReLU-like non-negative values as VGG's fc2 gives; a third of the photos are
    loners; burst members are seconds apart, bursts spread over three years.
    """
    rng = np.random.default_rng(seed)
    vectors = np.empty((n, dims), dtype=np.float32)
    timestamps = np.empty(n)
    i = 0
    while i < n:
        size = 1 if rng.random() < 0.33 else int(rng.integers(2, 2 * group))
        size = min(size, n - i)
        centre = np.maximum(rng.normal(0, 1, dims), 0).astype(np.float32)
        start = 1.6e9 + rng.uniform(0, 9.5e7)
        for _ in range(size):
            vectors[i] = np.maximum(centre + rng.normal(0, noise, dims).astype(np.float32), 0)
            timestamps[i] = start + rng.uniform(0, 120)
            i += 1
    return vectors, timestamps, np.arange(1, n + 1)

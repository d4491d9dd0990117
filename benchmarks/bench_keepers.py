"""Keepers and duplicate tiers on real photos: how often the keeper of a burst is its undegraded shot, and how
well the near-duplicate tier tells copies from other views.

    python benchmarks/bench_keepers.py            # every Holidays photo as a burst
    python benchmarks/bench_keepers.py --bursts 20

Bursts: each INRIA Holidays original (2048 x 1536, ../shared/data) with eight copies degraded as cameras and
hands do: defocus (Gaussian, sigma 1.5 and 4 px), motion blur (7 and 19 px), -1.5 and +1.5 EV with clipping,
sensor noise (sigma 12 of 255) and heavy JPEG compression (quality 8); the original and every copy but the
last saved at JPEG quality 92, so file format tells nothing. Each file goes through the importer's own decode
(importer.decode: draft, signals) and each burst through the engine's keeper rule
(datasette_imagecluster.engine.keepers), against three baselines on the same bursts: the largest file (Immich's
rule), the first shot of the burst in a random order, and the sharpest by the whole frame's variance of the
Laplacian (the usual blur measure).

Near duplicates: the tier's rule (fingerprints' cosine distance at most keepers.NEAR; EfficientNet-Lite0) on
imagededup's transformed copies (pairs that are duplicates) and on UKBench's groups (four views of one object:
pairs that are not), as precision and recall over pairs, per threshold. Docs: docs/quality.md, "Keepers".
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import DATA, machine  # noqa: E402
from datasette_imagecluster.engine import keepers  # noqa: E402
from importer.decode import DecodeRequest, decode  # noqa: E402

SHARED = Path(os.environ.get("IMAGECLUSTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
QUALITY = 92
DEGRADED = ("defocus 1.5", "defocus 4", "motion 7", "motion 19", "-1.5 EV", "+1.5 EV", "noise 12", "JPEG q8")


def _motion(img: Image.Image, length: int) -> Image.Image:
    """A horizontal motion blur of ``length`` px (a box along the rows)."""
    x = np.asarray(img, dtype=np.float32)
    c = np.cumsum(np.pad(x, ((0, 0), (length, 0), (0, 0)), mode="edge"), axis=1)
    out = (c[:, length:] - c[:, :-length]) / length
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _exposure(img: Image.Image, ev: float) -> Image.Image:
    """``ev`` stops in linear light (sRGB's curve as a 2.2 gamma), clipped as a sensor clips."""
    linear = (np.asarray(img, dtype=np.float32) / 255) ** 2.2 * 2**ev
    return Image.fromarray((np.clip(linear, 0, 1) ** (1 / 2.2) * 255 + 0.5).astype(np.uint8))


def _noise(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    x = np.asarray(img, dtype=np.float32) + np.random.default_rng(seed).normal(0, sigma, (img.height, img.width, 1))
    return Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))


def make_burst(original: Path, folder: Path, seed: int) -> list[Path]:
    """The original's shot (re-saved) and its eight degraded copies, the original first."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i}.jpg" for i in range(len(DEGRADED) + 1)]
    if all(p.exists() for p in paths):
        return paths
    img = Image.open(original)
    img.load()
    img = img.convert("RGB")
    shots = [
        img,
        img.filter(ImageFilter.GaussianBlur(1.5)),
        img.filter(ImageFilter.GaussianBlur(4)),
        _motion(img, 7),
        _motion(img, 19),
        _exposure(img, -1.5),
        _exposure(img, 1.5),
        _noise(img, 12, seed),
    ]
    for shot, path in zip(shots, paths):
        shot.save(path, "JPEG", quality=QUALITY)
    img.save(paths[-1], "JPEG", quality=8)
    return paths


def signals_of(paths: list[Path]) -> tuple[keepers.Quality, np.ndarray]:
    """The importer's signals of each file, and the files' sizes."""
    rows = []
    for path in paths:
        stat = path.stat()
        decoded = decode(DecodeRequest(str(path), stat.st_size, stat.st_mtime, (224, 224)))
        s = decoded.signals
        compression = np.nan if s.compression is None else s.compression
        rows.append(
            (s.sharpness, s.noise, s.highlights, s.shadows, s.brightness, compression, decoded.width * decoded.height)
        )
    columns = np.array(rows, dtype=np.float64).T
    return keepers.Quality(*columns), np.array([p.stat().st_size for p in paths])


def _laplacian_variance(path: Path) -> float:
    """The whole frame's variance of the Laplacian on a 512-px grayscale copy: the usual blur measure."""
    img = Image.open(path)
    img.draft("L", (512, 512))
    g = np.asarray(img.convert("L"), dtype=np.float32)
    return float((g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]).var())


def bursts_benchmark(count: int | None) -> None:
    originals = sorted((SHARED / "holidays_subset").rglob("*.jpg"))[:count]
    if not originals:
        sys.exit(f"no Holidays photos under {SHARED}: set IMAGECLUSTER_SHARED_DATA")
    cache = DATA / "keepers"
    rng = random.Random(0)
    hits = {"keeper rule": 0, "largest file": 0, "first shot": 0, "Laplacian": 0}
    misses: dict[str, int] = {}
    reasons = []
    start = time.perf_counter()
    for n, original in enumerate(originals):
        paths = make_burst(original, cache / original.stem, seed=n)
        quality, sizes = signals_of(paths)
        chosen = keepers.pick(quality)
        hits["keeper rule"] += chosen.keeper == 0
        if chosen.keeper != 0:
            name = DEGRADED[chosen.keeper - 1]
            misses[name] = misses.get(name, 0) + 1
        reasons.append(chosen.reason)
        hits["largest file"] += int(np.argmax(sizes)) == 0
        hits["Laplacian"] += int(np.argmax([_laplacian_variance(p) for p in paths])) == 0
        order = list(range(len(paths)))
        rng.shuffle(order)
        hits["first shot"] += order[0] == 0
    seconds = time.perf_counter() - start
    print(f"bursts: {len(originals)} Holidays originals x (1 + {len(DEGRADED)} degraded copies), {seconds:.0f} s")
    for name, value in hits.items():
        print(f"  {name:>12}: the original kept in {value}/{len(originals)} bursts ({value / len(originals):.0%})")
    if misses:
        print("  the rule's misses kept: " + ", ".join(f"{k} ({v})" for k, v in sorted(misses.items())))
    print(f"  a reason: {reasons[0]}")


def _fingerprints(folder: Path, db: Path) -> tuple[list[str], np.ndarray]:
    """Paths and unit fingerprints of a folder, imported with the default model (cached in ``db``)."""
    subprocess.run([sys.executable, "-m", "importer", "import", str(db), str(folder), "-s"], check=True, cwd=ROOT)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select i.path, f.vector from images i join fingerprints f on f.image_id = i.id").fetchall()
    vectors = np.array([np.frombuffer(blob, dtype=np.float32) for _, blob in rows], dtype=np.float64)
    return [path for path, _ in rows], vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _picture(path: str) -> str:
    """What imagededup's file shows: its UKBench number (the RGBA PNG is ukbench00120 with an alpha channel)."""
    found = re.search(r"ukbench(\d+)", path)
    return found.group(1) if found else "00120" if "alpha_channel" in path else path


def near_duplicates() -> None:
    """Precision and recall over pairs of the near-duplicate tier, at its threshold and around it."""
    cache = DATA / "keepers"
    cache.mkdir(parents=True, exist_ok=True)
    dedup_paths, dedup = _fingerprints(SHARED / "imagededup_testdata", cache / "imagededup.db")
    views_paths, views = _fingerprints(SHARED / "ukbench_subset", cache / "ukbench.db")
    copies, others = [], []  # cosine distances of pairs that are copies, and of pairs that are not
    for a, b in itertools.combinations(range(len(dedup_paths)), 2):
        (copies if _picture(dedup_paths[a]) == _picture(dedup_paths[b]) else others).append(1 - dedup[a] @ dedup[b])
    views_pairs = []  # UKBench: four views of one object (not duplicates)
    for a, b in itertools.combinations(range(len(views_paths)), 2):
        if int(_picture(views_paths[a])) // 4 == int(_picture(views_paths[b])) // 4:
            views_pairs.append(1 - views[a] @ views[b])
    copies, negatives = np.array(copies), np.array(others + views_pairs)
    print(
        f"near duplicates: {len(copies)} pairs of imagededup copies; not duplicates: {len(others)} pairs of "
        f"imagededup's other pictures, {len(views_pairs)} pairs of UKBench's other views of one object"
    )
    for threshold in sorted({0.02, 0.05, keepers.NEAR, 0.12, 0.2}):
        found = (copies <= threshold).sum()
        false = (negatives <= threshold).sum()
        precision = found / (found + false) if found + false else 1.0
        chosen = "  <- the tier's threshold" if threshold == keepers.NEAR else ""
        print(
            f"  cosine distance <= {threshold:.2f}: precision {precision:.2f}, recall {found / len(copies):.2f} "
            f"({found} of {len(copies)} copies; {false} false){chosen}"
        )
    print(f"  UKBench's other views are {min(views_pairs):.3f} apart or more; imagededup's copies by kind:")
    for name in ("resize", "hflip", "gray", "rotation", ".webp"):
        pairs = [
            1 - dedup[a] @ dedup[b]
            for a, b in itertools.combinations(range(len(dedup_paths)), 2)
            if _picture(dedup_paths[a]) == _picture(dedup_paths[b])
            and (name in dedup_paths[a]) != (name in dedup_paths[b])
        ]
        if pairs:
            print(f"    {name.strip('.')}: {min(pairs):.3f} from its original")


def signal_cost(count: int) -> None:
    """What the signals add to a decode, on 12-MP copies of Holidays photos and on the 3-MP originals: decode()
    as the import runs it, with the signals and with them stubbed out, alternated (and which goes first), medians
    of 5 passes, and the signals alone on decoded drafts. The import is bound by its decoders (docs/benchmarks.md),
    so this share is its cost on the import rate."""
    import importer.decode as decoding
    from benchmarks.bench_limit import twelve_megapixel

    originals = sorted((SHARED / "holidays_subset").rglob("*.jpg"))[:count]
    real = decoding.measure, decoding.jpeg_pixels_sha256
    for label, paths in (("12 MP", sorted(twelve_megapixel(originals).glob("*.jpg"))[:count]), ("3 MP", originals)):
        times: dict[bool, list[float]] = {True: [], False: []}
        for turn in range(5):
            for signals in (True, False) if turn % 2 else (False, True):
                decoding.measure, decoding.jpeg_pixels_sha256 = real if signals else (lambda *a: None, lambda p: None)
                start = time.perf_counter()
                for path in paths:
                    stat = path.stat()
                    decoding.decode(DecodeRequest(str(path), stat.st_size, stat.st_mtime, (224, 224)))
                times[signals].append(time.perf_counter() - start)
        decoding.measure, decoding.jpeg_pixels_sha256 = real
        on, off = (statistics.median(times[k]) / len(paths) * 1000 for k in (True, False))
        alone = statistics.median(_signals_alone(paths) for _ in range(5)) / len(paths) * 1000
        print(
            f"signals' cost, {label} ({len(paths)} photos, one core): decode {off:.1f} ms a photo without them, "
            f"{on:.1f} ms with them ({on / off - 1:+.1%}); the signals alone {alone:.1f} ms ({alone / off:.1%})"
        )


def _signals_alone(paths: list[Path]) -> float:
    """Seconds the signals take on decoded drafts (the difference of two decodes is within their noise)."""
    from importer.photo_quality import jpeg_pixels_sha256, measure

    drafts = []
    for path in paths:
        img = Image.open(path)
        img.draft("RGB", (320, 320))
        drafts.append((path, img.convert("RGB"), img.quantization))
    start = time.perf_counter()
    for path, img, quantization in drafts:
        measure(img, quantization, jpeg_pixels_sha256(str(path)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bursts", type=int, default=None, help="how many Holidays originals (default all)")
    args = parser.parse_args()
    print(machine())
    signal_cost(24)
    bursts_benchmark(args.bursts)
    near_duplicates()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory():
        main()

"""Real fingerprints for the clustering benchmark: the pretrained model on crops of the real photos.

The exact clustering's bounds (``datasette_imagecluster/engine/bounds.py``) prune as
well as the fingerprints' variance is concentrated in few directions. Random
fingerprints have a flat spectrum and say nothing about real ones, so the
benchmark's synthetic fingerprints are fitted to this spectrum: EfficientNet-Lite0
(pretrained, offline) on random crops of every photo in ../shared/data.
The features are computed once and kept in benchmarks/.data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from common import DATA  # noqa: E402

SHARED = Path(os.environ.get("IMAGECLUSTER_SHARED_DATA", ROOT.parent / "shared" / "data"))
CROPS = 2000
SUFFIXES = {".jpg", ".jpeg", ".png"}


def real_features(crops: int = CROPS) -> np.ndarray:
    """EfficientNet-Lite0 pooled features (1280 values) of ``crops`` random crops of the real photos."""
    cache = DATA / f"real-features-{crops}.npy"
    if cache.exists():
        return np.load(cache)
    from PIL import Image, ImageOps

    from importer.models import BUILT_IN, load_fingerprinter, resolve_weights

    photos = []
    for path in sorted(SHARED.rglob("*")):
        if path.suffix.lower() in SUFFIXES:
            try:
                with Image.open(path) as image:
                    if min(image.size) >= 64:
                        photos.append(ImageOps.exif_transpose(image).convert("RGB"))
            except Exception:  # the odd and broken images are there on purpose
                continue
    if not photos:
        sys.exit(f"no real photos at {SHARED} (set IMAGECLUSTER_SHARED_DATA)")
    architecture = next(a for a in BUILT_IN if a.name == "efficientnet-lite0")
    model = load_fingerprinter(architecture, architecture.default_layer, resolve_weights(architecture, "imagenet"))
    rng = np.random.default_rng(0)
    features = []
    for start in range(0, crops, 50):
        batch = []
        for _ in range(min(50, crops - start)):
            image = photos[int(rng.integers(len(photos)))]
            w, h = image.size
            share = rng.uniform(0.4, 1.0)
            cw, ch = int(w * share), int(h * share)
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = image.crop((x, y, x + cw, y + ch)).resize((224, 224), Image.Resampling.BILINEAR)
            batch.append(np.asarray(crop))
        features.append(model(np.stack(batch)))
    features = np.concatenate(features)
    DATA.mkdir(parents=True, exist_ok=True)
    np.save(cache, features)
    return features


def fitted_fingerprints(n: int, dims: int = 4096, noise: float = 0.65, seed: int = 0):
    """Bursts and loners like :func:`common.structured_fingerprints`, with the real features' spectrum.

    Burst centres are drawn from a Gaussian with the real features' mean and
    principal directions and variances; members add noise with the same
    spectrum, scaled by ``noise`` (0.65 puts members 0.6 as far apart as
    unrelated photos, as in INRIA Holidays with this model); a ReLU keeps them non-negative, as the
    real features are. The 1280 values sit in ``dims`` coordinates (the rest
    0, in a random order), so the arithmetic is that of a 4096-dimensional
    fc2 while the geometry is the real model's.
    """
    real = real_features().astype(np.float64)
    mean = real.mean(axis=0)
    _, s, vt = np.linalg.svd(real - mean, full_matrices=False)
    scale = (s / np.sqrt(len(real)))[:, None] * vt  # rows: principal directions times their std
    rng = np.random.default_rng(seed)
    place = rng.permutation(dims)[: real.shape[1]]
    vectors = np.zeros((n, dims), dtype=np.float32)
    timestamps = np.empty(n)
    i = 0
    while i < n:
        size = min(n - i, 1 if rng.random() < 0.33 else int(rng.integers(2, 8)))
        centre = mean + rng.standard_normal(len(s)) @ scale
        members = centre + noise * rng.standard_normal((size, len(s))) @ scale
        vectors[i : i + size, place] = np.maximum(members, 0)
        timestamps[i : i + size] = 1.6e9 + rng.uniform(0, 9.5e7) + rng.uniform(0, 120, size)
        i += size
    return vectors, timestamps, np.arange(1, n + 1)


def event_fingerprints(n: int, dims: int = 4096, noise: float = 0.65, seed: int = 0):
    """A library shaped like a photographer's: outings of 20 to 200 photos (as many small as large ones) over
    1 to 8 hours, days to weeks apart, over years; each outing a few scenes of 1 to 15 shots seconds to
    minutes apart, a tenth of the photos loners. Content has the real features' spectrum as in
    :func:`fitted_fingerprints` (scenes of one outing share a place: half their centre is the outing's).
    """
    real = real_features().astype(np.float64)
    mean = real.mean(axis=0)
    _, s, vt = np.linalg.svd(real - mean, full_matrices=False)
    scale = (s / np.sqrt(len(real)))[:, None] * vt
    rng = np.random.default_rng(seed)
    place = rng.permutation(dims)[: real.shape[1]]
    vectors = np.zeros((n, dims), dtype=np.float32)
    timestamps = np.empty(n)
    i, start = 0, 1.3e9
    while i < n:
        size = min(n - i, int(np.exp(rng.uniform(np.log(20), np.log(200)))))
        span = rng.uniform(1, 8) * 3600
        outing = rng.standard_normal(len(s)) @ scale
        clock, end = start, i + size
        while i < end:
            shots = min(end - i, 1 if rng.random() < 0.1 else int(rng.integers(1, 16)))
            centre = mean + 0.7 * outing + 0.7 * (rng.standard_normal(len(s)) @ scale)
            members = centre + noise * rng.standard_normal((shots, len(s))) @ scale
            vectors[i : i + shots, place] = np.maximum(members, 0)
            timestamps[i : i + shots] = clock + np.cumsum(rng.uniform(1, 90, shots))
            clock = timestamps[i + shots - 1] + rng.uniform(0, 2 * span / max(1, size / 8))
            i += shots
        start = max(clock, start + span) + rng.uniform(1, 20) * 86400
    return vectors, timestamps, np.arange(1, n + 1)


def variance_shares(vectors: np.ndarray, ks=(16, 32, 64, 128, 256)) -> dict[int, float]:
    """Share of the variance in the leading k principal directions."""
    x = np.asarray(vectors, dtype=np.float64)
    s = np.linalg.svd(x - x.mean(axis=0), compute_uv=False) ** 2
    return {k: float(s[:k].sum() / s.sum()) for k in ks}


if __name__ == "__main__":
    f = real_features()
    print("real", f.shape, {k: round(v, 3) for k, v in variance_shares(f).items()})
    v, _, _ = fitted_fingerprints(2000)
    print("fitted", v.shape, {k: round(x, 3) for k, x in variance_shares(v).items()})

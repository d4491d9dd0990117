"""Quality signals of one photo, from the pixels the importer decodes anyway: what picks a burst's keeper.

Measured on a grayscale working copy of at most ``WORKING`` px on its longer side (a JPEG's draft is about that
size already), so a 12-MP and a 3-MP photo are judged at the same scale:

- **sharpness**: the energy of a fine band (the difference of two binomial blurs: what defocus takes first) in
  the sharpest tenth of 32-px tiles, less twice the energy of the flattest fifth (the floor). A shallow depth of
  field keeps a sharp subject and is not punished, as the whole frame's variance of the Laplacian punishes it;
  sensor noise raises the floor as much as the sharp tiles, so it does not pass for detail (the floor is kept as
  ``noise``).
- **exposure**: the share of pixels clipped white and black, and the mean brightness.
- **compression**: the mean of a JPEG's luminance quantisation table (1 is the finest; a quality-8 JPEG's is
  above 100), read from the file's header at no cost.
- **pixels_sha256**: the hash of what the photo shows (a JPEG's image segments and scan; the decoded pixels of
  other formats), the same for two files whose metadata alone differs.

The whole costs a few milliseconds of a decode of tens (``benchmarks/bench_keepers.py``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

WORKING = 512  # px on the longer side of the working copy
TILE = 32  # px of a tile's side
SHARPEST = 0.1  # the share of tiles the sharpness is read from
FLATTEST = 0.2  # the share of tiles the floor (noise, and detail too fine to be a subject) is read from
FLOOR_MARGIN = 2.0  # times the floor taken off: on bench_keepers.py's bursts 1 kept 66 of 69 originals, 1.5 and 2 all
CLIPPED_WHITE = 250
CLIPPED_BLACK = 5
# JPEG markers that carry metadata, not pixels: APP0-APP15 and comments.
_METADATA_MARKERS = frozenset(range(0xE0, 0xF0)) | {0xFE}
SCAN_HEAD = 256 * 1024
SCAN_TAIL = 64 * 1024
_MARGIN = 4  # px the fine band loses on each axis: four pairwise sums


@dataclass(frozen=True)
class Signals:
    """One photo's quality signals (the ``photo_quality`` table's columns)."""

    sharpness: float  # log10 of the sharp tiles' mid-band energy above the floor
    noise: float  # log10 of the band's energy in the flattest tiles (the floor)
    highlights: float  # share of pixels clipped white
    shadows: float  # share of pixels clipped black
    brightness: float  # mean luminance, 0 to 1
    compression: float | None  # mean luminance quantisation step of a JPEG; None for other formats
    pixels_sha256: str


def measure(img: Image.Image, quantization: dict | None, pixels_sha256: str | None = None) -> Signals:
    """The signals of an upright RGB picture (the importer's draft); ``quantization``: Pillow's
    ``Image.quantization`` of a JPEG; ``pixels_sha256``: the file's image data's hash where it was read."""
    gray = img.convert("L")
    if max(gray.size) > WORKING:
        gray = gray.resize(_fit(gray.size, WORKING), Image.Resampling.BOX)
    values = np.asarray(gray)
    energy = np.sort(_tile_energies(values))
    top = energy[-max(1, int(len(energy) * SHARPEST)) :].mean()
    floor = energy[: max(1, int(len(energy) * FLATTEST))].mean()
    pixels = values.size
    return Signals(
        sharpness=float(np.log10(max(top - FLOOR_MARGIN * floor, 0.0) + 1e-3)),
        noise=float(np.log10(floor + 1e-3)),
        highlights=float(np.count_nonzero(values >= CLIPPED_WHITE) / pixels),
        shadows=float(np.count_nonzero(values <= CLIPPED_BLACK) / pixels),
        brightness=float(values.mean() / 255.0),
        compression=_compression(quantization),
        pixels_sha256=pixels_sha256 or hashlib.sha256(img.tobytes()).hexdigest(),
    )


def _tile_energies(values: np.ndarray) -> np.ndarray:
    """The fine band's mean energy in each whole ``TILE`` x ``TILE`` tile (the whole frame as one tile when it is
    smaller), a stripe of tiles at a time: whole-frame temporaries are large enough that the allocator maps and
    unmaps each one, which took three times the arithmetic's time; a stripe's stay in its heap."""
    rows, cols = (values.shape[0] - _MARGIN) // TILE, (values.shape[1] - _MARGIN) // TILE
    if rows <= 0 or cols <= 0:
        band = _band(values.astype(np.float32))
        return np.array([float((band**2).mean()) if band.size else 0.0])
    out = np.empty((rows, cols))
    for row in range(rows):
        stripe = values[row * TILE : (row + 1) * TILE + _MARGIN].astype(np.float32)
        energy = _band(stripe)[:, : cols * TILE] ** 2
        out[row] = energy.reshape(TILE, cols, TILE).mean(axis=(0, 2))
    return out.ravel()


def _band(values: np.ndarray) -> np.ndarray:
    """The fine band: the picture blurred by the binomial kernel [1, 2, 1] less it blurred by [1, 4, 6, 4, 1]
    (Gaussians of sigma 0.7 and 1 px), on the part of the frame both kernels cover whole (``_MARGIN`` px less on
    each axis). Each blur is pairwise sums along each axis, a tenth of the cost of Pillow's Gaussian blur."""
    finer = _pairs(_pairs(values)) / 16
    coarser = _pairs(_pairs(finer)) / 16
    return finer[1:-1, 1:-1] - coarser


def _pairs(values: np.ndarray) -> np.ndarray:
    """Each pixel plus its right neighbour, then each result plus the one below: the kernel [1, 1] on both axes."""
    across = values[:, :-1] + values[:, 1:]
    return across[:-1] + across[1:]


def _fit(size: tuple[int, int], largest: int) -> tuple[int, int]:
    scale = largest / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _compression(quantization: dict | None) -> float | None:
    """The luminance table's mean step (Pillow lists each table's 64 values; table 0 is the luminance's)."""
    if not quantization or 0 not in quantization:
        return None
    table = list(quantization[0])
    return float(sum(table) / len(table)) if table else None


def jpeg_pixels_sha256(path: str) -> str | None:
    """SHA-256 of a JPEG's segments that make its pixels (tables, frame) without its metadata (APPn, comments),
    with its scan's length and both its ends (``SCAN_HEAD`` and ``SCAN_TAIL`` bytes): the same for a copy whose
    EXIF, XMP or IPTC alone was edited. A re-encode changes every byte of the scan and a pixel edit all of it
    after the edit, so the ends tell them apart, at a tenth of hashing the whole scan. None where the file is
    not a JPEG this walk understands (the caller hashes the decoded pixels instead)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if f.read(2) != b"\xff\xd8":
            return None
        while True:
            marker = f.read(2)
            if len(marker) < 2 or marker[0] != 0xFF:
                return None
            kind = marker[1]
            while kind == 0xFF:  # fill bytes before a marker
                byte = f.read(1)
                if not byte:
                    return None
                kind = byte[0]
            length_bytes = f.read(2)
            if len(length_bytes) < 2:
                return None
            length = int.from_bytes(length_bytes, "big")
            if length < 2:
                return None
            if kind == 0xDA:  # start of scan: the rest is the pixels, sampled at both ends with its length
                start = f.tell() - 4
                end = f.seek(0, os.SEEK_END)
                f.seek(start)
                digest.update((end - start).to_bytes(8, "big"))
                digest.update(f.read(SCAN_HEAD))
                f.seek(max(start, end - SCAN_TAIL))
                digest.update(f.read(SCAN_TAIL))
                return digest.hexdigest()
            body = f.read(length - 2)
            if len(body) < length - 2:
                return None
            if kind not in _METADATA_MARKERS:
                digest.update(bytes([0xFF, kind]) + length_bytes + body)

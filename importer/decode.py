"""Decode one photo: hash, EXIF, oriented RGB pixels, thumbnail and model input.

:func:`decode` runs in worker processes (it imports Pillow, numpy and
exifread, never TensorFlow) and returns either a :class:`Decoded` or a
:class:`~importer.folders.Problem`; it never raises for a bad file. JPEGs are
decoded with Pillow's draft mode, which scales in the DCT domain to the
smallest size still larger than the thumbnail: 3-4 times faster than a full
decode of a camera-size photo, and the pixels we keep are the same size.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile

from .catalogs.base import Preview
from .catalogs.lightroom_previews import PreviewError, preview_jpeg
from .exif import CaptureInfo, capture_from_pillow, read_capture_info
from .folders import Problem, display_path, file_sha256, sniff_file
from .photo_quality import Signals, jpeg_pixels_sha256, measure
from .raw import RawError, is_raw, open_raw

THUMBNAIL_SIZE = 320
THUMBNAIL_QUALITY = 80
PREVIEW_QUALITY = 80

# EXIF orientation -> the transpose that shows the photo upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Formats whose decoder turns the pixels upright itself: pillow-heif applies HEIF's rotation
# (Pillow's AVIF plugin only reports AVIF's, as an EXIF orientation).
DECODER_ROTATED = frozenset({"HEIF"})

# A truncated photo is an error to report, not something to half-import.
ImageFile.LOAD_TRUNCATED_IMAGES = False

try:  # HEIC/HEIF photos (iPhones and many Android phones), when pillow-heif is installed
    from pillow_heif import register_heif_opener
except ImportError:  # then HEIF files are reported in import_errors as unreadable
    pass
else:
    register_heif_opener()


@dataclass
class DecodeRequest:
    path: str
    size: int
    mtime: float
    input_size: tuple[int, int]
    sha256: str | None = None
    # A catalog's rendering of the photo: used when the original is missing or cannot be decoded.
    preview: Preview | None = None
    original_missing: bool = False  # then size and mtime are the preview's
    # A catalog's orientation, which wins over the file's: users rotate photos there.
    orientation: int | None = None
    preview_size: int = 0  # the longer side of a preview to store for the page's loupe (0: none)
    fingerprint: bool = True  # False: it has its fingerprint, only the rest is wanted (signals, a preview)


@dataclass
class Decoded:
    path: str
    size: int
    mtime: float
    sha256: str
    format: str
    width: int
    height: int
    capture: CaptureInfo
    thumbnail: bytes
    thumbnail_width: int
    thumbnail_height: int
    pixels: np.ndarray  # uint8, input_size[1] x input_size[0] x 3
    pixels_from: str = "file"  # or raw-preview, raw-develop, lightroom-preview
    pixels_path: str | None = None  # the file the pixels came from, when it is not ``path``
    preview: bytes | None = None  # a JPEG of at most preview_size px, when asked for
    preview_width: int = 0
    preview_height: int = 0
    signals: Signals | None = None  # None where they could not be measured
    fingerprint: bool = True  # the request's: whether the model still has to run on it


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: alpha composited on white, 16-bit scaled down."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if img.mode == "F":
            lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
            arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        elif arr.max(initial=0) > 255:
            arr = arr / 257.0
        gray = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _short_reason(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:300]


def _pillow_orientation(img: Image.Image) -> int | None:
    """Orientation as Pillow reads it: EXIF, PNG text profiles and XMP, which exifread misses.

    For HEIF, pillow-heif has already applied the container's rotation and reports 1.
    """
    try:
        value = img.getexif().get(0x0112)
    except Exception:  # a broken EXIF block: exifread's reading stands
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _second_reading(img: Image.Image, capture: CaptureInfo, mtime: float) -> CaptureInfo:
    """Capture time through Pillow's EXIF reader when exifread found none."""
    if capture.timestamp_source != "mtime":
        return capture
    try:
        other = capture_from_pillow(img.getexif(), mtime)
    except Exception:  # a broken block for Pillow too: keep exifread's answer
        return capture
    if other.timestamp_source == "mtime":
        return capture
    other.orientation = capture.orientation
    return other


@dataclass
class _Opened:
    image: Image.Image  # upright RGB, drafted for JPEG
    format: str
    width: int  # of the full upright image
    height: int
    capture: CaptureInfo
    pixels_from: str = "file"
    pixels_path: str | None = None
    quantization: dict | None = None  # a JPEG's tables, for its compression signal
    pixels_sha256: str | None = None  # a JPEG's image data's hash


def _upright(img: Image.Image, orientation: int) -> Image.Image:
    img = to_rgb(img)
    return img.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else img


def _covering(size: tuple[int, int], largest: int) -> tuple[int, int]:
    """The box a picture of ``size`` scaled to ``largest`` px on its longer side fills: a preview's, drafted
    no larger than it needs (a square box would decode a 4:3 photo at twice the size)."""
    width, height = size
    scale = largest / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open_and_orient(
    path: str, capture: CaptureInfo, mtime: float, catalog_orientation: int | None, largest: int = THUMBNAIL_SIZE
) -> _Opened:
    """The photo upright, drafted (JPEG) or reduced (RAW) to no less than ``largest`` px, what it is made into."""
    quantization = pixels_sha256 = None
    if is_raw(path):
        img, fmt, width, height, source = open_raw(path, largest)
        orientation = capture.orientation
    else:
        source = "file"
        with warnings.catch_warnings():
            # Photos above Pillow's warning threshold (89 Mpx) are real cameras;
            # only its hard limit (twice that) is treated as a decompression bomb.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # e.g. "malformed MPO file"
            img = Image.open(path)
            fmt = img.format or "unknown"
            width, height = img.size
            capture = _second_reading(img, capture, mtime)
            orientation = capture.orientation = _pillow_orientation(img) or capture.orientation
            quantization = getattr(img, "quantization", None) if fmt == "JPEG" else None
            if fmt == "JPEG":  # scaled in the DCT domain, to no less than the thumbnail's box and the preview
                box = _covering(img.size, largest)
                img.draft("RGB", (max(box[0], THUMBNAIL_SIZE), max(box[1], THUMBNAIL_SIZE)))
            img.load()
    if catalog_orientation and fmt not in DECODER_ROTATED:
        orientation = capture.orientation = catalog_orientation
    if orientation >= 5:
        width, height = height, width
    if fmt == "JPEG":
        pixels_sha256 = jpeg_pixels_sha256(path)
    upright = _upright(img, orientation)
    return _Opened(upright, fmt, width, height, capture, source, None, quantization, pixels_sha256)


def _open_original(request: DecodeRequest) -> _Opened | Problem:
    """The photo's own pixels, or the one-line reason they cannot be had."""
    path = request.path
    try:
        if request.size == 0:
            return _problem(request, "read", "empty file")
        sha256 = request.sha256 or file_sha256(path)
        with open(path, "rb") as f:
            capture = read_capture_info(f, request.mtime)
    except FileNotFoundError:
        return _problem(request, "read", "file vanished during the import")
    except OSError as e:
        return _problem(request, "read", f"cannot read: {e.strerror or _short_reason(e)}")
    request.sha256 = sha256
    try:
        largest = max(THUMBNAIL_SIZE, request.preview_size)
        return _open_and_orient(path, capture, request.mtime, request.orientation, largest)
    except Image.DecompressionBombError as e:
        return _problem(request, "decode", f"decompression bomb: {_short_reason(e)}")
    except RawError as e:
        return _problem(request, "decode", _short_reason(e))
    except FileNotFoundError:
        return _problem(request, "read", "file vanished during the import")
    except Image.UnidentifiedImageError:
        if _sniff_path(path) == "HEIF":
            return _problem(request, "decode", "HEIC/HEIF photo: no HEIF decoder is installed")
        return _problem(request, "decode", "not an image Pillow can read (unknown format or corrupt header)")
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as e:
        return _problem(request, "decode", f"cannot decode: {_short_reason(e)}")


def _open_preview(request: DecodeRequest, original: Problem | None) -> _Opened | Problem:
    """The catalog's preview in place of an original that is missing (``original`` None) or unreadable."""
    preview = request.preview
    why = "original not found" if original is None else original.message
    try:
        if original is None:
            request.sha256 = file_sha256(preview.path)
        jpeg = preview_jpeg(preview.path)
        img = Image.open(io.BytesIO(jpeg))
        img.draft("RGB", (max(THUMBNAIL_SIZE, request.preview_size),) * 2)
        img.load()
        capture = read_capture_info(io.BytesIO(jpeg), request.mtime)
    except (OSError, PreviewError, ValueError, SyntaxError, EOFError) as e:
        return _problem(request, "decode", f"{why}; its Lightroom preview is unreadable too: {_short_reason(e)}")
    capture.orientation = preview.orientation
    img = _upright(img, preview.orientation)
    fmt = os.path.splitext(request.path)[1].lstrip(".").upper() or "unknown"
    return _Opened(img, fmt, img.width, img.height, capture, "lightroom-preview", preview.path)


def decode(request: DecodeRequest) -> Decoded | Problem:
    """Everything the import needs from one file, or the one-line reason it failed."""
    if request.original_missing:
        opened = _open_preview(request, None)
    else:
        opened = _open_original(request)
        if isinstance(opened, Problem) and opened.stage == "decode" and request.preview is not None:
            opened = _open_preview(request, opened)
    if isinstance(opened, Problem):
        return opened
    img = opened.image
    preview = None
    try:
        signals = measure(img, opened.quantization, opened.pixels_sha256)
    except (OSError, ValueError, MemoryError):  # the photo still imports; its keeper is chosen without it
        signals = None
    try:
        if request.preview_size:  # first, and the rest made from it: smaller, so quicker to resize
            preview = img.copy()
            preview.thumbnail((request.preview_size,) * 2, Image.Resampling.BICUBIC, reducing_gap=2.0)
            img = preview
            preview_out = io.BytesIO()
            preview.save(preview_out, "JPEG", quality=PREVIEW_QUALITY)
        pixels = np.asarray(img.resize(request.input_size, Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.uint8)
        thumb = img.copy()
        thumb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS, reducing_gap=3.0)
        out = io.BytesIO()
        thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
    except (OSError, ValueError, MemoryError) as e:
        return _problem(request, "decode", f"cannot resize: {_short_reason(e)}")
    return Decoded(
        path=request.path,
        size=request.size,
        mtime=request.mtime,
        sha256=request.sha256,
        format=opened.format,
        width=opened.width,
        height=opened.height,
        capture=opened.capture,
        thumbnail=out.getvalue(),
        thumbnail_width=thumb.width,
        thumbnail_height=thumb.height,
        pixels=pixels,
        pixels_from=opened.pixels_from,
        pixels_path=opened.pixels_path,
        preview=preview_out.getvalue() if preview is not None else None,
        preview_width=preview.width if preview is not None else 0,
        preview_height=preview.height if preview is not None else 0,
        signals=signals,
        fingerprint=request.fingerprint,
    )


def _sniff_path(path: str) -> str | None:
    try:
        return sniff_file(path)
    except OSError:
        return None


def _problem(request: DecodeRequest, stage: str, message: str) -> Problem:
    return Problem(display_path(request.path), stage, message, request.size, request.mtime)

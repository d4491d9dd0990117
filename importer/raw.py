"""RAW camera files (CR2, CR3, NEF, ARW, DNG, ORF, RW2, RAF, ...) through LibRaw (rawpy).

The embedded JPEG preview, which every camera writes, is used when there is
one: full-size decoding and demosaicing would cost seconds per photo and add
nothing to a 224x224 fingerprint. Without a preview, LibRaw develops the raw
data at half size. Orientation is left to EXIF, as for every other photo.
"""

from __future__ import annotations

import io
import os

from PIL import Image

from datasette_imagecluster.errors import ImageclusterError

from .folders import RAW_EXTENSIONS


class RawError(ImageclusterError):
    """A RAW file LibRaw cannot read; the message says why."""


def is_raw(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS


def open_raw(path: str, preview_size: int) -> tuple[Image.Image, str, int, int, str]:
    """(image, format, width, height before orientation, pixel source) of a RAW file.

    The pixel source is ``raw-preview`` (the camera's embedded preview) or
    ``raw-develop`` (LibRaw's half-size development).
    """
    try:
        import rawpy
    except ImportError:
        raise RawError("RAW files need rawpy (pip install 'datasette-imagecluster[importer]')")
    fmt = os.path.splitext(path)[1].lstrip(".").upper()
    try:
        with rawpy.imread(path) as raw:
            width, height = raw.sizes.width, raw.sizes.height
            try:
                thumb = raw.extract_thumb()
            except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
                thumb = None
            if thumb is not None and thumb.format == rawpy.ThumbFormat.JPEG:
                img = Image.open(io.BytesIO(thumb.data))
                img.draft("RGB", (preview_size, preview_size))
                img.load()
                source = "raw-preview"
            elif thumb is not None and thumb.format == rawpy.ThumbFormat.BITMAP:
                img = Image.fromarray(thumb.data)
                source = "raw-preview"
            else:
                img = Image.fromarray(raw.postprocess(half_size=True, use_camera_wb=True, user_flip=0, output_bps=8))
                source = "raw-develop"
    except rawpy.LibRawError as e:
        raise RawError(f"LibRaw cannot read this {fmt} file ({type(e).__name__}: {e})")
    return img, fmt, width, height, source

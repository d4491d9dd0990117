"""Capture time, orientation, camera and GPS from a photo's EXIF, via exifread.

Capture time is taken from the first usable of DateTimeOriginal,
DateTimeDigitized and DateTime (editors often rewrite DateTime, so it comes
last), each with its sub-seconds and UTC offset when present, and from the
file's mtime when none is usable. ``timestamp`` is seconds since the epoch:
true UTC when the offset is known (and for mtime), otherwise the local wall
clock read as if it were UTC, which keeps the differences between photos of
one camera right. A broken EXIF block never fails an import: its reason is
kept in ``error`` and the file's mtime is used.
"""

from __future__ import annotations

import calendar
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import BinaryIO

import exifread

# exifread logs every file it does not recognise (PNG, GIF, ...) as a warning.
logging.getLogger("exifread").setLevel(logging.CRITICAL)

# (source name, date tag, sub-second tag, offset tag), in order of preference.
DATE_TAGS = (
    ("exif:DateTimeOriginal", "EXIF DateTimeOriginal", "EXIF SubSecTimeOriginal", "EXIF OffsetTimeOriginal"),
    ("exif:DateTimeDigitized", "EXIF DateTimeDigitized", "EXIF SubSecTimeDigitized", "EXIF OffsetTimeDigitized"),
    ("exif:DateTime", "Image DateTime", "EXIF SubSecTime", "EXIF OffsetTime"),
)

_DATE = re.compile(r"^\s*(\d{4})[:\-/.](\d{1,2})[:\-/.](\d{1,2})[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?")
_OFFSET = re.compile(r"^\s*(?:(Z)|([+-])(\d{1,2}):?(\d{2}))\s*$")


@dataclass
class CaptureInfo:
    taken: str
    timestamp: float
    timestamp_source: str
    orientation: int = 1
    camera_make: str | None = None
    camera_model: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    error: str | None = None


def parse_exif_datetime(value: str, subsec: str | None = None, offset: str | None = None) -> tuple[str, float] | None:
    """``(taken, timestamp)`` from EXIF date text, or None if it is not a real date."""
    m = _DATE.match(value or "")
    if not m:
        return None
    year, month, day, hour, minute = (int(g) for g in m.groups()[:5])
    second = int(m.group(6) or 0)
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    if year < 1800:
        return None
    digits = re.sub(r"\D", "", subsec or "")[:6]
    if digits:
        moment = moment.replace(microsecond=int(digits.ljust(6, "0")))
    tz = _parse_offset(offset)
    if tz is not None:
        moment = moment.replace(tzinfo=tz)
        return moment.isoformat(), moment.timestamp()
    stamp = calendar.timegm(moment.timetuple()) + moment.microsecond / 1e6
    return moment.isoformat(), stamp


def _parse_offset(offset: str | None) -> timezone | None:
    m = _OFFSET.match(offset or "")
    if not m:
        return None
    if m.group(1):
        return timezone.utc
    hours, minutes = int(m.group(3)), int(m.group(4))
    if hours > 14 or minutes > 59:
        return None
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if m.group(2) == "-" else delta)


def mtime_capture(mtime: float) -> tuple[str, float]:
    """``(taken, timestamp)`` from a file's mtime, in the machine's local time zone."""
    return datetime.fromtimestamp(mtime).astimezone().isoformat(), mtime


def _text(tags: dict, name: str) -> str | None:
    values = tags.get(name)
    if values is None:
        return None
    if isinstance(values, bytes):
        values = values.decode("utf-8", "replace")
    if isinstance(values, (list, tuple)):
        values = " ".join(str(v) for v in values)
    text = str(values).replace("\x00", "").strip()
    return text or None


def _degrees(tags: dict, name: str, ref_name: str, limit: float) -> float | None:
    values = tags.get(name)
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        return None
    try:
        d, m, s = (float(v) for v in values)
    except (ValueError, ZeroDivisionError, TypeError):
        return None
    value = d + m / 60 + s / 3600
    ref = (_text(tags, ref_name) or "").upper()
    if ref in ("S", "W"):
        value = -value
    if not -limit <= value <= limit or (d == m == s == 0):
        return None
    return round(value, 7)


def _orientation(tags: dict) -> int:
    values = tags.get("Image Orientation")
    try:
        value = int(values[0] if isinstance(values, (list, tuple)) else values) if values is not None else 1
    except (TypeError, ValueError, IndexError):
        return 1
    return value if 1 <= value <= 8 else 1


def capture_info(tags: dict, mtime: float, error: str | None = None) -> CaptureInfo:
    """CaptureInfo from tag values named as exifread names them ("EXIF DateTimeOriginal", ...)."""
    for source, date_tag, subsec_tag, offset_tag in DATE_TAGS:
        text = _text(tags, date_tag)
        if text is None:
            continue
        parsed = parse_exif_datetime(text, _text(tags, subsec_tag), _text(tags, offset_tag))
        if parsed is not None:
            taken, timestamp = parsed
            break
    else:
        source = "mtime"
        taken, timestamp = mtime_capture(mtime)
    return CaptureInfo(
        taken=taken,
        timestamp=timestamp,
        timestamp_source=source,
        orientation=_orientation(tags),
        camera_make=_text(tags, "Image Make"),
        camera_model=_text(tags, "Image Model"),
        latitude=_degrees(tags, "GPS GPSLatitude", "GPS GPSLatitudeRef", 90),
        longitude=_degrees(tags, "GPS GPSLongitude", "GPS GPSLongitudeRef", 180),
        error=error,
    )


def read_capture_info(f: BinaryIO, mtime: float) -> CaptureInfo:
    """Everything this project takes from EXIF, read by exifread; never raises for bad EXIF."""
    error = None
    try:
        found = exifread.process_file(f, details=False)
        tags = {name: getattr(tag, "values", tag) for name, tag in found.items()}
    except Exception as e:  # exifread raises many kinds on broken blocks
        tags = {}
        error = f"unreadable EXIF ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'})"
    return capture_info(tags, mtime, error)


# Pillow's EXIF tag ids under exifread's names, by IFD (None: the main IFD).
PILLOW_TAGS = {
    None: {0x010F: "Image Make", 0x0110: "Image Model", 0x0112: "Image Orientation", 0x0132: "Image DateTime"},
    0x8769: {
        0x9003: "EXIF DateTimeOriginal",
        0x9004: "EXIF DateTimeDigitized",
        0x9010: "EXIF OffsetTime",
        0x9011: "EXIF OffsetTimeOriginal",
        0x9012: "EXIF OffsetTimeDigitized",
        0x9290: "EXIF SubSecTime",
        0x9291: "EXIF SubSecTimeOriginal",
        0x9292: "EXIF SubSecTimeDigitized",
    },
    0x8825: {1: "GPS GPSLatitudeRef", 2: "GPS GPSLatitude", 3: "GPS GPSLongitudeRef", 4: "GPS GPSLongitude"},
}


def capture_from_pillow(exif, mtime: float) -> CaptureInfo:
    """The same, from a Pillow ``Image.Exif``: a second reader for blocks exifread cannot parse
    (EXIF in PNG, WebP, and HEIF written by some encoders)."""
    tags = {}
    for ifd, names in PILLOW_TAGS.items():
        values = exif if ifd is None else exif.get_ifd(ifd)
        for tag, name in names.items():
            if tag in values:
                value = values[tag]
                tags[name] = list(value) if isinstance(value, tuple) else value
    return capture_info(tags, mtime)

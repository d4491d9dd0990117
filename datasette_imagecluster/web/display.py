"""Dates, names and sizes as a photo app shows them: "9 Jul 2006, 09:14–14:03", never an ISO "T" or an epoch.

Capture times are stored as the camera wrote them (``2006-07-09T09:14:51``,
local time, an offset where EXIF gave one): the page shows them in that local
time, the year and the day once where a span repeats them.
"""

from __future__ import annotations

from datetime import datetime, timezone

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def parse_taken(value: str | None) -> datetime | None:
    """A stored capture time as a datetime (its own offset dropped: shown as the camera's clock said), or None."""
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


def _day(moment: datetime, year: bool = True) -> str:
    return f"{moment.day} {MONTHS[moment.month - 1]}" + (f" {moment.year}" if year else "")


def _clock(moment: datetime) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


def photo_date(value: str | None) -> str | None:
    """``9 Jul 2006, 09:14`` from ``2006-07-09T09:14:51``; None when there is no (readable) capture time."""
    moment = parse_taken(value)
    return None if moment is None else f"{_day(moment)}, {_clock(moment)}"


def date_span(first: str | None, last: str | None) -> str | None:
    """A cluster's span, the year and day once where they repeat: ``9 Jul 2006, 09:14–14:03``,
    ``9 Jul, 09:14 – 12 Jul 2006, 18:30``, ``30 Dec 2006 – 2 Jan 2007``."""
    a, b = parse_taken(first), parse_taken(last)
    if a is None or b is None:
        return photo_date(first or last)
    if b < a:
        a, b = b, a
    if a.date() == b.date():
        clocks = _clock(a) if _clock(a) == _clock(b) else f"{_clock(a)}–{_clock(b)}"
        return f"{_day(a)}, {clocks}"
    if a.year == b.year:
        return f"{_day(a, year=False)}, {_clock(a)} – {_day(b)}, {_clock(b)}"
    return f"{_day(a)} – {_day(b)}"


def epoch_date(seconds: float | None) -> str | None:
    """A file time (seconds since 1970, UTC) as ``4 Dec 2026, 18:31 UTC``."""
    if not isinstance(seconds, (int, float)):
        return None
    try:
        moment = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None
    return f"{_day(moment)}, {_clock(moment)} UTC"


def file_name(path: str | None, image_id: int) -> str:
    """The last part of a photo's path (``IMG_0042.JPG``), or ``photo 42`` where it has none."""
    return (path or "").replace("\\", "/").rsplit("/", 1)[-1] or f"photo {image_id}"

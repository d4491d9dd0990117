"""A sample library for a first run without photos of one's own: real photographs that install with a package.

scikit-image ships a few real photographs in its wheel (NASA's, and others
in the public domain or CC0: see each function's docstring in
``skimage.data``), so nothing is downloaded. They are arranged as a photo
library is: bursts of a few shots seconds apart (the shots reframed and
re-exposed a little, as a hand does), scenes on different days, a stereo
pair of one motorcycle, and loners; each JPEG carries its capture time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from datasette_imagecluster.errors import ImageclusterError

# (scikit-image's photograph, when its burst was shot); each gives three shots 2 and 6 seconds apart.
BURSTS = (
    ("astronaut", "2024-03-02 10:15:00"),
    ("chelsea", "2024-03-02 18:40:00"),
    ("coffee", "2024-04-14 08:05:00"),
    ("rocket", "2024-05-20 14:30:00"),
    ("hubble_deep_field", "2024-06-01 23:10:00"),
    ("immunohistochemistry", "2024-07-09 11:00:00"),
    ("retina", "2024-07-09 11:40:00"),
)
PAIR = ("stereo_motorcycle", "2024-08-17 16:20:00")  # two views of one scene, 3 seconds apart
LONERS = (("camera", "2023-11-05 09:00:00"), ("moon", "2024-09-18 21:30:00"), ("coins", "2024-10-02 13:00:00"))
# (seconds after the first, crop, offset, exposure gain) of a burst's three shots
SHOTS = ((0.0, 1.0, (0.0, 0.0), 1.0), (2.0, 0.94, (0.03, 0.02), 1.06), (6.0, 0.9, (0.06, 0.05), 0.95))


class SampleError(ImageclusterError):
    """The sample can't be written: scikit-image is missing, or the folder holds other files."""


def _photographs() -> dict[str, list[np.ndarray]]:
    try:
        import skimage.data as data
    except ImportError:
        raise SampleError("the sample photos come with scikit-image: pip install scikit-image") from None
    found = {name: [getattr(data, name)()] for name, _ in (*BURSTS, *LONERS)}
    left, right, _ = data.stereo_motorcycle()
    found[PAIR[0]] = [left, right]
    return found


def _shot(pixels: np.ndarray, crop: float, offset: tuple[float, float], gain: float):
    from PIL import Image

    image = Image.fromarray(pixels).convert("RGB")
    w, h = image.size
    cw, ch = round(w * crop), round(h * crop)
    x, y = min(round(w * offset[0]), w - cw), min(round(h * offset[1]), h - ch)
    image = image.crop((x, y, x + cw, y + ch)).resize((w, h), Image.Resampling.LANCZOS)
    if gain != 1.0:
        image = Image.fromarray(np.clip(np.asarray(image, np.float32) * gain, 0, 255).astype(np.uint8))
    return image


def _save(image, path: Path, when: datetime) -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0131] = "imagecluster sample (scikit-image's photographs)"  # Software
    exif.get_ifd(0x8769)[0x9003] = when.strftime("%Y:%m:%d %H:%M:%S")  # DateTimeOriginal
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=92, exif=exif)


def write_sample(folder: Path) -> list[Path]:
    """Write the sample library into ``folder`` (made if missing, or one written before: the same files
    again); SampleError for a folder that holds anything else. Returns the photos' paths."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise SampleError(f"{folder} is a file: give a folder for the sample photos")
    planned: list[tuple[Path, str, int, float, tuple[float, float], float, datetime]] = []
    for name, start in BURSTS:
        when = datetime.fromisoformat(start)
        day = when.strftime("%Y-%m-%d")
        for k, (seconds, crop, offset, gain) in enumerate(SHOTS):
            planned.append(
                (folder / day / f"{name}-{k + 1}.jpg", name, 0, crop, offset, gain, when + timedelta(0, seconds))
            )
    when = datetime.fromisoformat(PAIR[1])
    for k in range(2):
        path = folder / when.strftime("%Y-%m-%d") / f"motorcycle-{k + 1}.jpg"
        planned.append((path, PAIR[0], k, 1.0, (0.0, 0.0), 1.0, when + timedelta(0, 3 * k)))
    for name, start in LONERS:
        when = datetime.fromisoformat(start)
        planned.append((folder / when.strftime("%Y-%m-%d") / f"{name}.jpg", name, 0, 1.0, (0.0, 0.0), 1.0, when))
    ours = {path for path, *_ in planned}
    if folder.is_dir():
        others = [p for p in folder.rglob("*") if p.is_file() and p not in ours]
        if others:
            raise SampleError(f"{folder} holds other files ({others[0].name}, ...): give a new folder for the sample")
    photographs = _photographs()
    for path, name, view, crop, offset, gain, when in planned:
        _save(_shot(photographs[name][view], crop, offset, gain), path, when)
    return [path for path, *_ in planned]

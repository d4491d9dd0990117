"""The import against its limit: decoding alone, the model alone, and the whole ``imagecluster import``.

    python benchmarks/bench_limit.py                 # 12-MP copies of the Holidays photos, and the originals
    python benchmarks/bench_limit.py --baseline DIR  # also the import of another checkout (e.g. a worktree of
                                                     # the commit before a change), in the same run
    python benchmarks/bench_limit.py --precision mixed  # the model and the import in mixed precision

On real photos: the INRIA Holidays photos of ../shared/data (3 MP), and copies of them scaled to 12 MP
(4000 x 3000, their EXIF kept), made once in benchmarks/.data. Each figure in a process of its own:

* decoding alone, as the importer decodes (hash, EXIF, draft mode, orientation, thumbnail, model input),
  in one process per core (its marginal rate, so the processes' start is not counted);
* the model alone (the default, EfficientNet-Lite0, batches of 32, as bench_models.py runs it: the rate does
  not depend on the weights), on ONNX Runtime and on PyTorch eager;
* the whole ``imagecluster import`` with the default model, its marginal rate over two library sizes (so the
  start-up, paid once, is not counted), as a share of the limit 1 / (1/decode + 1/model).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_models  # noqa: E402
from common import DATA, machine, python_measured  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("IMAGECLUSTER_SHARED_DATA", ROOT.parent / "shared" / "data"))

DECODE = r"""
import os, sys, time, glob
from importer.decode import DecodeRequest
from importer.pipeline import decode_all
files = sorted(glob.glob(sys.argv[1] + "/**/*.jpg", recursive=True))
workers = os.cpu_count() or 2
def seconds(paths):
    requests = [DecodeRequest(p, os.path.getsize(p), os.path.getmtime(p), (224, 224)) for p in paths]
    start = time.perf_counter()
    assert sum(1 for _ in decode_all(requests, workers, ahead=4 * workers)) == len(paths)
    return time.perf_counter() - start
seconds(files)  # the files in the page cache
one, three = seconds(files), seconds(files * 3)  # marginal: the processes' start is paid once in each
print(2 * len(files) / (three - one))
"""


def twelve_megapixel(originals: list[Path]) -> Path:
    """Copies of the photos scaled to 4000 x 3000 (portrait ones 3000 x 4000), EXIF kept; made once."""
    from PIL import Image

    folder = DATA / "holidays-12mp"
    folder.mkdir(parents=True, exist_ok=True)
    for path in originals:
        target = folder / path.name
        if target.exists():
            continue
        with Image.open(path) as img:
            size = (4000, 3000) if img.width >= img.height else (3000, 4000)
            exif = img.info.get("exif", b"")
            img.convert("RGB").resize(size, Image.Resampling.LANCZOS).save(target, "JPEG", quality=92, exif=exif)
    return folder


def library(photos: list[Path], count: int, where: Path) -> Path:
    """A folder of ``count`` photos (links), cycling through them with distinct names if there are fewer."""
    folder = where / f"library-{count}"
    folder.mkdir()
    for k in range(count):
        source = photos[k % len(photos)]
        if k < len(photos):
            (folder / source.name).symlink_to(source)
        else:  # another name, and bytes after the image's end: the same pixels, a file (and hash) of its own
            (folder / f"copy{k}-{source.name}").write_bytes(source.read_bytes() + b"\0" * k)
    return folder


def import_seconds(folder: Path, checkout: Path | None, *options: str) -> float:
    """Wall seconds of a whole ``imagecluster import`` of the folder into a new database, in a fresh process."""
    env = dict(os.environ)
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "importer", "import", str(Path(tmp) / "p.db"), str(folder), "-s", *options],
            check=True,
            env=env,
            cwd=checkout or ROOT,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - started


def marginal(photos: list[Path], sizes: tuple[int, int], checkout: Path | None, *options: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        small, large = (library(photos, n, Path(tmp)) for n in sizes)
        import_seconds(small, checkout, *options)  # the exported graph cached, the files in the page cache
        w1, w2 = import_seconds(small, checkout, *options), import_seconds(large, checkout, *options)
    return (sizes[1] - sizes[0]) / (w2 - w1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs and smaller libraries")
    parser.add_argument("--baseline", type=Path, help="a checkout whose import is measured the same way")
    parser.add_argument("--precision", choices=("float32", "mixed"), default="float32")
    args = parser.parse_args()
    originals = sorted((SHARED / "holidays_subset").rglob("*.jpg"))
    if not originals:
        sys.exit(f"the Holidays photos are not at {SHARED / 'holidays_subset'} (set IMAGECLUSTER_SHARED_DATA)")
    print(f"Machine: {machine()}")
    seconds = "6" if args.quick else "15"
    from importer.pipeline import DEFAULT_MODEL

    rate_on = {}
    for runtime in ("default", "pytorch"):
        rate, _, used = python_measured(bench_models.RATE, DEFAULT_MODEL, seconds, runtime, args.precision)[2].split()
        rate_on[used.replace("_", " ") if runtime == "default" else "PyTorch eager"] = float(rate)
    model = next(iter(rate_on.values()))
    print(
        f"  model alone (EfficientNet-Lite0, batch 32, {args.precision}): "
        + ", ".join(f"{rate:.1f} photos/s on {where}" for where, rate in rate_on.items())
    )
    options = ("--precision", args.precision)
    sizes = (24, 72) if args.quick else (24, 120)
    for label, folder in (
        ("12 MP", twelve_megapixel(originals)),
        ("3 MP Holidays originals", SHARED / "holidays_subset"),
    ):
        photos = sorted(folder.rglob("*.jpg"))
        decode = float(python_measured(DECODE, str(folder))[2])
        limit = 1 / (1 / decode + 1 / model)
        print(f"\n{label} ({len(photos)} photos)")
        print(f"  decoding alone, {os.cpu_count()} processes: {decode:.1f} photos/s")
        print(f"  the limit, 1 / (1/decode + 1/model): {limit:.1f} photos/s")
        rate = marginal(photos, sizes, None, *options)
        print(
            f"  imagecluster import (marginal, {sizes[0]} -> {sizes[1]} photos): {rate:.1f} photos/s = "
            f"{rate / limit:.0%} of the limit"
        )
        if args.baseline:
            base = marginal(photos, sizes, args.baseline.resolve(), "--model", "efficientnet-lite0", *options)
            print(
                f"  {args.baseline} import --model efficientnet-lite0: {base:.1f} photos/s = "
                f"{base / limit:.0%} of the limit; this one {rate / base:.2f}x"
            )


if __name__ == "__main__":
    main()

"""Decoding every kind of photo to upright RGB, and a one-line reason for every bad file."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from importer.decode import THUMBNAIL_SIZE, Decoded, DecodeRequest, decode, to_rgb
from importer.folders import Problem

from .conftest import save_jpeg, scene, shared_data


def request(path, input_size=(224, 224)) -> DecodeRequest:
    st = os.stat(path)
    return DecodeRequest(str(path), st.st_size, st.st_mtime, input_size)


def test_camera_jpeg_is_drafted_thumbnailed_and_hashed(tmp_path):
    path = save_jpeg(tmp_path / "big.jpg", scene(4, (4000, 3000)), taken="2021:06:01 10:00:00")
    out = decode(request(path))
    assert isinstance(out, Decoded)
    assert (out.format, out.width, out.height) == ("JPEG", 4000, 3000)
    assert out.pixels.shape == (224, 224, 3) and out.pixels.dtype == np.uint8
    assert max(out.thumbnail_width, out.thumbnail_height) == THUMBNAIL_SIZE
    thumb = Image.open(io.BytesIO(out.thumbnail))
    assert thumb.format == "JPEG" and thumb.size == (out.thumbnail_width, out.thumbnail_height)
    import hashlib

    assert out.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert out.capture.taken == "2021-06-01T10:00:00"


def test_orientation_6_is_applied_to_size_thumbnail_and_pixels(tmp_path):
    # A landscape file whose left half is red; orientation 6 means "rotate 90 clockwise to view".
    arr = np.zeros((300, 400, 3), np.uint8)
    arr[:, :200] = (255, 0, 0)
    arr[:, 200:] = (0, 0, 255)
    path = save_jpeg(tmp_path / "rot.jpg", Image.fromarray(arr), orientation=6)
    out = decode(request(path))
    assert (out.width, out.height) == (300, 400)  # portrait once upright
    thumb = np.asarray(Image.open(io.BytesIO(out.thumbnail)))
    assert thumb.shape[0] > thumb.shape[1]
    # The red left half of the stored image is the top half once rotated clockwise.
    assert thumb[: thumb.shape[0] // 4].mean(axis=(0, 1))[0] > 200
    assert out.pixels[:50].mean(axis=(0, 1))[0] > 200 and out.pixels[-50:].mean(axis=(0, 1))[2] > 200


@pytest.mark.parametrize(
    "mode, fmt",
    [
        ("L", "PNG"),
        ("LA", "PNG"),
        ("RGBA", "PNG"),
        ("P", "GIF"),
        ("CMYK", "JPEG"),
        ("I;16", "PNG"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
        ("RGB", "TIFF"),
        ("1", "BMP"),
        ("F", "TIFF"),
    ],
)
def test_every_mode_and_format_becomes_rgb(tmp_path, mode, fmt):
    img = scene(5, (200, 150))
    if mode == "I;16":
        img = Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    elif mode == "F":
        img = Image.fromarray(np.asarray(img.convert("L"), np.float32) / 3.0)
    else:
        img = img.convert(mode)
    path = tmp_path / f"x.{fmt.lower()}"
    img.save(path, fmt)
    out = decode(request(path))
    assert isinstance(out, Decoded), out
    assert out.format == fmt and out.pixels.shape == (224, 224, 3)
    # Not blown out: 16-bit and float images are scaled, not clipped to white.
    assert 20 < out.pixels.mean() < 235


def test_alpha_is_composited_on_white():
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert to_rgb(img).getpixel((5, 5)) == (255, 255, 255)


def test_animated_gif_uses_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (64, 64), c) for c in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    out = decode(request(path))
    assert out.pixels.mean(axis=(0, 1))[0] > 200


@pytest.mark.parametrize(
    "content, stage, reason",
    [
        (b"", "read", "empty file"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, "decode", ""),
        (b"hello, I am text", "decode", "not an image Pillow can read"),
    ],
)
def test_bad_files_are_problems_with_one_line_reasons(tmp_path, content, stage, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    out = decode(request(path))
    assert isinstance(out, Problem)
    assert out.stage == stage and reason in out.message and "\n" not in out.message


def test_truncated_jpeg_is_a_problem(tmp_path):
    full = save_jpeg(tmp_path / "full.jpg", scene(6, (800, 600)))
    path = tmp_path / "cut.jpg"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    out = decode(request(path))
    assert isinstance(out, Problem) and out.stage == "decode"
    assert "truncated" in out.message


def test_decompression_bomb_is_refused(tmp_path):
    path = tmp_path / "bomb.png"
    Image.new("1", (15000, 15000)).save(path)  # 225 Mpx, above Pillow's hard limit
    out = decode(request(path))
    assert isinstance(out, Problem) and out.message.startswith("decompression bomb")


def test_file_vanishing_before_decode(tmp_path):
    path = save_jpeg(tmp_path / "gone.jpg", scene(1, (64, 64)))
    req = request(path)
    path.unlink()
    out = decode(req)
    assert isinstance(out, Problem) and "vanished" in out.message


def test_real_orientation_samples_come_out_upright():
    folder = shared_data("exif_samples", "recurser_exif-orientation-examples")
    reference = None
    for n in range(1, 9):
        out = decode(request(folder / f"Landscape_{n}.jpg"))
        assert isinstance(out, Decoded)
        if reference is None:
            reference = out.pixels.astype(float)
            size = (out.width, out.height)
        # Every orientation shows the same upright picture.
        assert (out.width, out.height) == size
        assert np.abs(out.pixels.astype(float) - reference).mean() < 12, n


def test_every_odd_pillow_file_decodes_or_gives_a_reason():
    folder = shared_data("odd_images")
    decoded = problems = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        out = decode(request(path))
        if isinstance(out, Problem):
            problems += 1
            assert out.message and "\n" not in out.message
        else:
            decoded += 1
            assert out.pixels.shape == (224, 224, 3)
    assert decoded > 20 and problems > 0


@pytest.mark.parametrize(
    "name, orientation",
    [
        ("g4_orientation_6.tif", 6),
        ("hopper_orientation_5.webp", 5),
        ("exif_imagemagick_orientation.png", 3),
        ("xmp_tags_orientation.png", 3),
    ],
)
def test_orientation_outside_jpeg_exif(name, orientation):
    path = shared_data("odd_images", "pillow_Tests_images", name)
    out = decode(request(path))
    assert out.capture.orientation == orientation


def test_heic_decodes_with_its_capture_time(tmp_path):
    pytest.importorskip("pillow_heif", reason="pillow-heif is part of the importer extra")
    from .conftest import exif_bytes

    path = tmp_path / "phone.heic"
    scene(8, (400, 300)).save(
        path, format="HEIF", exif=exif_bytes(taken="2022:02:16 12:55:41", subsec="762", offset="+01:00")
    )
    out = decode(request(path))
    assert isinstance(out, Decoded) and out.format == "HEIF"
    assert out.capture.taken == "2022-02-16T12:55:41.762000+01:00"
    assert out.capture.timestamp_source == "exif:DateTimeOriginal"


def test_png_exif_dates_are_read_through_pillow(tmp_path):
    from .conftest import exif_bytes

    path = tmp_path / "shot.png"
    scene(9, (200, 150)).save(path, "PNG", exif=exif_bytes(taken="2019:07:07 07:07:07"))
    out = decode(request(path))
    assert out.capture.taken == "2019-07-07T07:07:07"


@pytest.mark.parametrize(
    "name, taken, size",
    [
        ("IMG_5195.HEIC", "2021-04-11T15:47:53.054000-05:00", (2566, 3313)),
        ("mobile/iphone_13_pro_max.HEIC", "2022-02-16T12:55:41.762000+01:00", (3024, 4032)),
    ],
)
def test_real_iphone_heic(name, taken, size):
    pytest.importorskip("pillow_heif", reason="pillow-heif is part of the importer extra")
    path = shared_data("exif_samples", "ianare_exif-samples", "heic", name)
    out = decode(request(path))
    assert isinstance(out, Decoded)
    assert out.capture.taken == taken and out.capture.timestamp_source == "exif:DateTimeOriginal"
    assert (out.width, out.height) == size
    assert out.thumbnail_height > out.thumbnail_width  # portrait, upright


def _dng(path, preview: Image.Image | None = None, compression: str | None = "jpeg"):
    """A minimal DNG (a Bayer CFA, EXIF date and camera) written with tifffile.

    With ``preview``, laid out as cameras and Adobe's converter write it: IFD0
    is the reduced-resolution preview (JPEG, or uncompressed RGB with
    ``compression=None``) and the raw data sits in a SubIFD.
    """
    tifffile = pytest.importorskip("tifffile")
    cfa = np.asarray(scene(12, (400, 300)).convert("L"), dtype=np.uint16) * 16
    camera = [
        (50706, "B", 4, (1, 4, 0, 0), True),
        (50707, "B", 4, (1, 1, 0, 0), True),
        (271, "s", 0, "Canon", True),
        (272, "s", 0, "TestCam", True),
        (306, "s", 0, "2020:05:06 07:08:09", True),
    ]
    bayer = [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True)]
    with tifffile.TiffWriter(path) as tif:
        if preview is None:
            tif.write(cfa, photometric=32803, subfiletype=0, extratags=camera + bayer)
        else:
            tif.write(
                np.asarray(preview),
                photometric="rgb",
                compression=compression,
                subfiletype=1,
                subifds=1,
                extratags=camera,
            )
            tif.write(cfa, photometric=32803, subfiletype=0, extratags=bayer)
    return path


def test_raw_dng_is_developed_and_dated(tmp_path):
    pytest.importorskip("rawpy", reason="rawpy is part of the importer extra")
    out = decode(request(_dng(tmp_path / "IMG_0001.DNG")))
    assert isinstance(out, Decoded), out
    assert (out.format, out.width, out.height) == ("DNG", 400, 300)
    assert out.capture.taken == "2020-05-06T07:08:09" and out.capture.camera_model == "TestCam"
    assert out.pixels.shape == (224, 224, 3) and out.pixels.std() > 5
    assert (out.pixels_from, out.pixels_path) == ("raw-develop", None)


@pytest.mark.parametrize("compression", ["jpeg", None])
def test_raw_dng_embedded_preview_is_used(tmp_path, compression):
    """The camera's preview, not the raw data, is what gets fingerprinted (JPEG or RGB preview)."""
    pytest.importorskip("rawpy", reason="rawpy is part of the importer extra")
    pytest.importorskip("imagecodecs", reason="tifffile writes JPEG through imagecodecs")
    look = scene(40, (256, 192))
    out = decode(request(_dng(tmp_path / "IMG_0002.DNG", preview=look, compression=compression)))
    assert isinstance(out, Decoded), out
    assert out.pixels_from == "raw-preview" and out.format == "DNG"
    assert (out.width, out.height) == (400, 300)  # the raw's size, as the camera wrote it
    assert out.capture.taken == "2020-05-06T07:08:09"
    expected = np.asarray(look.resize((224, 224)), dtype=np.float32)
    developed = decode(request(_dng(tmp_path / "plain.DNG"))).pixels.astype(np.float32)
    assert np.abs(out.pixels - expected).mean() < 8 < np.abs(developed - expected).mean()


def test_a_broken_raw_file_is_a_problem(tmp_path):
    pytest.importorskip("rawpy", reason="rawpy is part of the importer extra")
    path = tmp_path / "broken.nef"
    path.write_bytes(b"II*\x00" + b"\x00" * 200)
    out = decode(request(path))
    assert isinstance(out, Problem) and out.stage == "decode" and "LibRaw cannot read this NEF file" in out.message

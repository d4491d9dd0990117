"""Where photos come from: walking folders and recognising images by content.

The walk yields every regular file with its size and mtime, and a
:class:`Problem` for whatever cannot be walked (unreadable folders, broken
links, FIFOs, names that are not UTF-8) so that the import can record it and
go on. Hidden files and folders (a leading dot: ``.thumbnails``, macOS
``._IMG_0001.JPG``) are passed over. Directory symlinks are followed once:
a loop is noticed by device and inode and walked no further.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

# Extensions that promise an image: a file with one of these that turns out
# not to be an image is an error; any other non-image file is simply not ours.
RAW_EXTENSIONS = frozenset(
    {
        ".cr2",
        ".cr3",
        ".crw",
        ".nef",
        ".nrw",
        ".arw",
        ".srf",
        ".sr2",
        ".dng",
        ".orf",
        ".rw2",
        ".raf",
        ".pef",
        ".srw",
        ".3fr",
        ".iiq",
        ".rwl",
        ".x3f",
        ".erf",
        ".kdc",
    }
)
IMAGE_EXTENSIONS = (
    frozenset(
        {".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp", ".gif", ".avif", ".heic", ".heif"}
    )
    | RAW_EXTENSIONS
)


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    mtime: float


@dataclass(frozen=True)
class Problem:
    """Something that could not be imported, with a one-line reason."""

    path: str
    stage: str
    message: str
    size: int | None = None
    mtime: float | None = None
    catalog: str | None = None  # the catalog whose row points at a missing original


def display_path(path: str) -> str:
    """A path that can be stored and printed even if its name is not valid UTF-8."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_valid_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def has_image_extension(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def sniff(head: bytes) -> str | None:
    """The image format these leading bytes announce, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    if (
        head[4:12] == b"ftypcrx "
        or head[:4] in (b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")
        or head.startswith(b"FUJIFILMCCD-RAW")
    ):
        return "RAW"  # CR3, ORF, RW2, RAF; CR2, NEF, ARW and DNG are TIFF
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little")
        in (
            12,
            40,
            52,
            56,
            64,
            108,
            124,
        )
    ):
        return "BMP"
    return None


def file_sha256(path: str) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks (hashlib releases the GIL)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sniff_file(path: str) -> str | None:
    """The image format of a file judged by its first bytes (OSError if unreadable)."""
    with open(path, "rb") as f:
        return sniff(f.read(32))


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def walk(roots: list[str]) -> Iterator[FileEntry | Problem]:
    """Every file below the roots (files given as roots are yielded themselves).

    Paths are absolute and unresolved, so a photo reached through a symlink
    keeps the name the user sees. Order is sorted by name within each folder,
    so imports are reproducible.
    """
    seen_dirs: set[tuple[int, int]] = set()
    for root in roots:
        root = os.path.abspath(root)
        try:
            st = os.stat(root)
        except OSError as e:
            yield Problem(display_path(root), "read", f"cannot read: {e.strerror or e}")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(root, st, seen_dirs)
        elif stat.S_ISREG(st.st_mode):
            yield from _file(root, st)
        else:
            yield Problem(display_path(root), "read", f"{_special_kind(st.st_mode)}, not a photo")


def _file(path: str, st: os.stat_result) -> Iterator[FileEntry | Problem]:
    if is_valid_utf8(path):
        yield FileEntry(path, st.st_size, st.st_mtime)
        return
    # Such a name cannot be stored as text; only complain if it is a photo.
    try:
        is_photo = has_image_extension(path) or sniff_file(path) is not None
    except OSError:
        is_photo = False
    if is_photo:
        yield Problem(display_path(path), "read", "file name is not valid UTF-8: rename it", st.st_size, st.st_mtime)


def _walk_dir(top: str, top_stat: os.stat_result, seen_dirs: set[tuple[int, int]]) -> Iterator[FileEntry | Problem]:
    stack = [(top, top_stat)]
    while stack:
        folder, folder_stat = stack.pop()
        key = (folder_stat.st_dev, folder_stat.st_ino)
        if key in seen_dirs:
            continue  # a symlink loop, or a folder reached twice
        seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield Problem(display_path(folder), "read", f"cannot read folder: {e.strerror or e}")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                st = entry.stat()  # follows symlinks
            except OSError as e:
                reason = "broken symbolic link" if entry.is_symlink() else f"cannot read: {e.strerror or e}"
                if has_image_extension(entry.name) or entry.is_symlink():
                    yield Problem(display_path(entry.path), "read", reason)
                continue
            if stat.S_ISDIR(st.st_mode):
                subfolders.append((entry.path, st))
            elif stat.S_ISREG(st.st_mode):
                yield from _file(entry.path, st)
            else:
                yield Problem(display_path(entry.path), "read", f"{_special_kind(st.st_mode)}, not a photo")
        # Reversed so that the stack pops them in name order.
        stack.extend(reversed(subfolders))

"""Fingerprint BLOBs: little-endian float32, the layout llm and sqlite-vec use."""

from __future__ import annotations

import numpy as np

DTYPE = np.dtype("<f4")
# No model here gives more than VGG16's flatten layer, 25,088 values: a BLOB far beyond that is not a fingerprint,
# and the SQL functions refuse it before reading it (zeroblob(40000000) took 1.75 s and 490 MB).
MAX_VALUES = 65536


def encode(vector: np.ndarray) -> bytes:
    """A 1-d vector as a little-endian float32 BLOB; ValueError beyond ``MAX_VALUES`` values."""
    if np.size(vector) > MAX_VALUES:
        raise ValueError(f"a fingerprint holds at most {MAX_VALUES:,} values, this one has {np.size(vector):,}")
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def decode(blob: bytes) -> np.ndarray:
    """A fingerprint BLOB as a float32 array; ValueError if it is not one."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ValueError("a fingerprint must be a BLOB of float32 values")
    if len(blob) > MAX_VALUES * DTYPE.itemsize:
        raise ValueError(
            f"a fingerprint holds at most {MAX_VALUES:,} float32 values, this BLOB has {len(blob):,} bytes"
        )
    if len(blob) == 0 or len(blob) % DTYPE.itemsize:
        raise ValueError(
            f"a fingerprint BLOB must hold a whole number of float32 values, this one has {len(blob)} bytes"
        )
    return np.frombuffer(blob, dtype=DTYPE)

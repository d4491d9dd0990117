"""Fingerprint BLOBs: little-endian float32, the layout llm and sqlite-vec use."""

from __future__ import annotations

import numpy as np

DTYPE = np.dtype("<f4")


def encode(vector: np.ndarray) -> bytes:
    """A 1-d vector as a little-endian float32 BLOB."""
    return np.ascontiguousarray(vector, dtype=DTYPE).tobytes()


def decode(blob: bytes) -> np.ndarray:
    """A fingerprint BLOB as a float32 array; ValueError if it is not one."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise ValueError("a fingerprint must be a BLOB of float32 values")
    if len(blob) == 0 or len(blob) % DTYPE.itemsize:
        raise ValueError(
            f"a fingerprint BLOB must hold a whole number of float32 values, this one has {len(blob)} bytes"
        )
    return np.frombuffer(blob, dtype=DTYPE)

"""ONNX Runtime for the PyTorch models: each graph exported once per weights, cached, checked, run for inference.

The graph is exported the first time a model's weights are used and kept in
the user's cache (``$IMAGECLUSTER_CACHE``, else ``$XDG_CACHE_HOME/imagecluster``
or ``~/.cache/imagecluster``), named by the weights' identity (their SHA-256).
A new export is used only once its features match PyTorch's on a probe batch;
a cached one only when its own SHA-256 matches the one stored beside it and
ONNX Runtime loads it: anything else is exported again.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from datasette_imagecluster.errors import ImageclusterError

from .folders import file_sha256

# What an exported graph's features must match PyTorch's within, relative to their largest magnitude: float32
# kernels in another order differ by ~1e-6 of it; a wrong graph differs by tens of percent.
TOLERANCE = 1e-4
INPUT, OUTPUT = "pixels", "features"
NAME = "ONNX Runtime"


class GraphError(ImageclusterError):
    """The inference runtime can't run this model (it is not installed, or the export failed its check)."""


def cache_dir() -> Path:
    """Where exported graphs are kept, as users' caches go."""
    if os.environ.get("IMAGECLUSTER_CACHE"):
        return Path(os.environ["IMAGECLUSTER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imagecluster"


def available() -> bool:
    """Whether ONNX Runtime (and onnx, which PyTorch's exporter needs) are installed, and not turned off
    (``IMAGECLUSTER_RUNTIME=pytorch`` runs the PyTorch models on PyTorch, as before)."""
    if os.environ.get("IMAGECLUSTER_RUNTIME", "").lower() == "pytorch":
        return False
    # Found, not imported: importing both takes 0.7 s, and the import asks before it knows there is work.
    return all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


def _session(path: Path, threads: int | None):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Threads that spin after each batch would take the cores the decoder processes need between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Graph:
    """An exported model on ONNX Runtime: float32 NCHW pixels in, float32 features out."""

    def __init__(self, session, path: Path):
        self.session, self.path = session, path

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, dtype=np.float32)})[0]


def load(
    name: str,
    export: Callable[[Path], None],
    reference: Callable[[np.ndarray], np.ndarray],
    probe: np.ndarray,
    threads: int | None = None,
) -> Graph:
    """The cached graph called ``name``, or one made by ``export(path)`` and checked against ``reference``
    (the framework's own features) on ``probe``; GraphError when a new export fails that check."""
    folder = cache_dir()
    path, stored = folder / f"{name}.onnx", folder / f"{name}.onnx.sha256"
    try:
        if path.is_file() and stored.is_file() and stored.read_text().strip() == file_sha256(str(path)):
            return Graph(_session(path, threads), path)
    except Exception:  # noqa: BLE001 (a cache ONNX Runtime can't load is made again below)
        pass
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".onnx")
    except OSError:  # a cache that can't be written: export for this process only
        handle, temporary = tempfile.mkstemp(prefix=f"{name}.", suffix=".onnx")
        folder = None
    os.close(handle)
    temporary = Path(temporary)
    try:
        export(temporary)
        graph = Graph(_session(temporary, threads), temporary)
        expected, found = reference(probe), graph(probe)
        scale = float(np.abs(expected).max()) or 1.0
        if found.shape != expected.shape or float(np.abs(found - expected).max()) > TOLERANCE * scale:
            raise GraphError(f"the exported graph of {name} does not compute PyTorch's features: not used")
        if folder is None:
            return graph
        digest = file_sha256(str(temporary))
        os.replace(temporary, path)
        stored.write_text(digest + "\n")
        return Graph(graph.session, path)
    finally:
        temporary.unlink(missing_ok=True)  # moved into the cache, or loaded already: ONNX Runtime holds it

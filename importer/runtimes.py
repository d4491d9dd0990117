"""Inference runtimes for the PyTorch models: each graph exported once per weights, cached, checked, run.

In float32 the graph runs on ONNX Runtime (on 2 cores, 7x PyTorch eager with
the same features within float32 tolerance); in mixed precision on OpenVINO
in bfloat16, where the CPU has bfloat16 instructions (AVX512-BF16 or AMX) and
OpenVINO is installed: about twice ONNX Runtime's rate, features within 6 % of
the largest value and a cosine above 0.996 to float32's, as close as
PyTorch's own bfloat16 autocast (benchmarks/bench_runtimes.py).

The graph (ONNX) is exported the first time a model's weights are used and
kept in the user's cache (``$IMAGECLUSTER_CACHE``, else
``$XDG_CACHE_HOME/imagecluster`` or ``~/.cache/imagecluster``), named by the
weights' identity (their SHA-256), and both runtimes read the same file. A
new export is used only once its features match PyTorch's on a probe batch; a
cached one only when its own SHA-256 matches the one stored beside it and the
runtime loads it: anything else is exported again. A 16-bit runtime is checked
against PyTorch on the probe each time it is loaded, within its own tolerance.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasette_imagecluster.errors import ImageclusterError

from .folders import file_sha256

INPUT, OUTPUT = "pixels", "features"


class GraphError(ImageclusterError):
    """The inference runtime can't run this model (it is not installed, or the export failed its check)."""


def _onnxruntime_session(path: Path, threads: int | None) -> Callable[[np.ndarray], np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Threads that spin after each batch would take the cores the decoder processes need between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT], {INPUT: x})[0]


def _openvino_bf16_session(path: Path, threads: int | None) -> Callable[[np.ndarray], np.ndarray]:
    import openvino

    config = {"INFERENCE_PRECISION_HINT": "bf16", "ENABLE_CPU_PINNING": False}  # the decoders share the cores
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = openvino.Core().compile_model(str(path), "CPU", config)
    return lambda x: np.asarray(compiled(x)[0], dtype=np.float32)


def _has_bfloat16() -> bool:
    """Whether OpenVINO finds bfloat16 instructions on this CPU (without them, bf16 would be emulated: slower)."""
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


@dataclass(frozen=True)
class Runtime:
    """An inference runtime for one precision: what it needs installed, how it runs a graph, how close to
    PyTorch's float32 features its own must come (relative to their largest magnitude)."""

    name: str  # as an import's summary names it: "CPU with ONNX Runtime"
    packages: tuple[str, ...]
    session: Callable[[Path, int | None], Callable[[np.ndarray], np.ndarray]]
    # float32 kernels in another order differ by ~1e-6 of the largest value; bfloat16 (8 bits of mantissa) by
    # up to 6e-2 on the Holidays photos, PyTorch's own autocast as much; a wrong graph differs by tens of percent.
    tolerance: float
    checked_each_load: bool = False
    usable: Callable[[], bool] = lambda: True

    def installed(self) -> bool:
        # Found, not imported: importing onnx and a runtime takes 0.7 s, asked before the import knows there is work.
        return all(importlib.util.find_spec(name) is not None for name in self.packages)


ONNX_RUNTIME = Runtime("ONNX Runtime", ("onnx", "onnxruntime"), _onnxruntime_session, 1e-4)
OPENVINO_BF16 = Runtime("OpenVINO in bfloat16", ("onnx", "openvino"), _openvino_bf16_session, 0.15, True, _has_bfloat16)
RUNTIMES = {"float32": ONNX_RUNTIME, "mixed": OPENVINO_BF16}


def for_precision(precision: str) -> Runtime | None:
    """The runtime a CPU model in ``precision`` runs on, or None: then on PyTorch, as before (not installed;
    no bfloat16 instructions for mixed; or ``IMAGECLUSTER_RUNTIME=pytorch``)."""
    runtime = RUNTIMES.get(precision)
    if runtime is None or os.environ.get("IMAGECLUSTER_RUNTIME", "").lower() == "pytorch":
        return None
    return runtime if runtime.installed() and runtime.usable() else None


def available(precision: str = "float32") -> bool:
    """Whether a CPU model in ``precision`` runs on an inference runtime (the import then gives every core to
    the decoders)."""
    return for_precision(precision) is not None


def cache_dir() -> Path:
    """Where exported graphs are kept, as users' caches go."""
    if os.environ.get("IMAGECLUSTER_CACHE"):
        return Path(os.environ["IMAGECLUSTER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imagecluster"


class Graph:
    """An exported model on a runtime: float32 NCHW pixels in, float32 features out."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], path: Path, runtime: Runtime):
        self.run, self.path, self.runtime = run, path, runtime

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.run(np.ascontiguousarray(x, dtype=np.float32))

    def check(self, name: str, reference: Callable[[np.ndarray], np.ndarray], probe: np.ndarray) -> None:
        """GraphError unless its features on ``probe`` are ``reference``'s within the runtime's tolerance."""
        expected, found = reference(probe), self(probe)
        scale = float(np.abs(expected).max()) or 1.0
        if found.shape != expected.shape or float(np.abs(found - expected).max()) > self.runtime.tolerance * scale:
            raise GraphError(f"the exported graph of {name} on {self.runtime.name} does not compute PyTorch's features")


def load(
    name: str,
    export: Callable[[Path], None],
    reference: Callable[[np.ndarray], np.ndarray],
    probe: np.ndarray,
    runtime: Runtime = ONNX_RUNTIME,
    threads: int | None = None,
) -> Graph:
    """The cached graph called ``name`` on ``runtime``, or one made by ``export(path)`` and checked against
    ``reference`` (the framework's own float32 features) on ``probe``; GraphError when it fails that check.

    A new export is checked in float32 (on ONNX Runtime where it is installed), so the cache holds only graphs
    that compute PyTorch's features; a 16-bit runtime is then checked within its own tolerance as well."""
    folder = cache_dir()
    path, stored = folder / f"{name}.onnx", folder / f"{name}.onnx.sha256"
    try:
        if path.is_file() and stored.is_file() and stored.read_text().strip() == file_sha256(str(path)):
            graph = Graph(runtime.session(path, threads), path, runtime)
            if runtime.checked_each_load:
                graph.check(name, reference, probe)
            return graph
    except GraphError:
        raise
    except Exception:  # noqa: BLE001 (a cache the runtime can't load is made again below)
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
        exact = ONNX_RUNTIME if ONNX_RUNTIME.installed() else runtime
        Graph(exact.session(temporary, threads), temporary, exact).check(name, reference, probe)
        loaded = temporary
        if folder is not None:
            digest = file_sha256(str(temporary))
            os.replace(temporary, path)
            stored.write_text(digest + "\n")
            loaded = path
        graph = Graph(runtime.session(loaded, threads), loaded, runtime)
        if runtime is not exact:
            graph.check(name, reference, probe)
        return graph
    finally:
        temporary.unlink(missing_ok=True)  # moved into the cache, or loaded already: the runtime holds it

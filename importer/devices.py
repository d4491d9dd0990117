"""Where a model runs (CPU or a GPU) and in what precision, chosen once per import.

The choice is a pure function of what the framework reports (:func:`choose`),
so it is tested on machines without a GPU; :func:`available` asks the
framework, and only when a model is built. Mixed precision (bfloat16 or
float16 arithmetic, float32 results) changes the fingerprints a little, so it
is part of the fingerprint set's identity (:func:`identity`): mixed and
full-precision fingerprints are never compared with each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasette_imagecluster.errors import ImageclusterError

DEVICES = ("auto", "cpu", "gpu")
PRECISIONS = ("float32", "mixed")
# Photos per model call when --batch-size is not given: a GPU wants large batches to be kept busy,
# a CPU gains nothing past a few dozen and pays in memory.
BATCH_SIZES = {"cpu": 32, "cuda": 128, "mps": 64, "gpu": 128}


class DeviceError(ImageclusterError):
    """The device asked for is not there; the message says what is."""


@dataclass(frozen=True)
class Device:
    """A device a framework can run on: ``kind`` is cpu, cuda, mps (Apple's Metal) or gpu (TensorFlow's)."""

    kind: str
    name: str  # as the framework names it: "cpu", "cuda:0", "mps", "/GPU:0"

    @property
    def batch_size(self) -> int:
        return BATCH_SIZES[self.kind]

    def describe(self) -> str:
        return "CPU" if self.kind == "cpu" else f"GPU ({self.name})"


CPU = Device("cpu", "cpu")


def choose(requested: str, found: list[Device]) -> Device:
    """The device for ``--device`` among those ``found``: auto takes the first GPU, else the CPU."""
    gpus = [d for d in found if d.kind != "cpu"]
    if requested == "cpu":
        return CPU
    if requested == "gpu" and not gpus:
        raise DeviceError("--device gpu: no GPU is visible to the model's framework; use --device cpu or auto")
    if requested not in DEVICES:
        raise DeviceError(f"--device {requested!r}: choose one of {', '.join(DEVICES)}")
    return gpus[0] if gpus else CPU


def available(framework: str) -> list[Device]:
    """The devices ``framework`` (torch or tensorflow) can run on, the CPU last; imports the framework."""
    found: list[Device] = []
    if framework == "torch":
        import torch

        found += [Device("cuda", f"cuda:{i}") for i in range(torch.cuda.device_count())]
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            found.append(Device("mps", "mps"))
    else:
        import tensorflow as tf

        found += [Device("gpu", "/GPU:" + d.name.rsplit(":", 1)[-1]) for d in tf.config.list_physical_devices("GPU")]
    return [*found, CPU]


def identity(weights_identity: str, precision: str) -> str:
    """The weights' identity as stored with each fingerprint: full precision keeps it, mixed adds ``+mixed``."""
    if precision not in PRECISIONS:
        raise DeviceError(f"--precision {precision!r}: choose float32 or mixed")
    return weights_identity if precision == "float32" else f"{weights_identity}+mixed"


def half_type(device: Device) -> str:
    """The 16-bit type mixed precision computes in: bfloat16 on CPUs (no float16 units), float16 on GPUs."""
    return "bfloat16" if device.kind == "cpu" else "float16"

"""The CNN that turns a photo into a fingerprint: Keras VGG16 cut at a layer.

This is the only module that imports TensorFlow, and it does so lazily, so a
re-run with nothing to fingerprint never pays for it. The weights' identity is
settled before any model is built and stored with every fingerprint:
``imagenet`` for Keras' pretrained download, ``sha256:<hex>`` for a local
weights file, ``random-seed-N`` for a random (deterministic, *not* pretrained)
initialisation used by tests and offline demos.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from .sources import file_sha256


class WeightsError(Exception):
    """The requested weights cannot be had; the message says what to do instead."""


# The pooled output of a backbone built without its classifier (include_top=False).
POOLED = "avgpool"


@dataclass(frozen=True)
class Architecture:
    name: str
    keras_class: str
    keras_module: str
    input_size: tuple[int, int]
    layers: dict[str, int]  # layer name -> fingerprint dimensions
    default_layer: str
    imagenet_file: str

    @property
    def pooled(self) -> bool:
        """Built without the classifier, global average pooling as the fingerprint."""
        return self.default_layer == POOLED


ARCHITECTURES = {
    "vgg16": Architecture(
        name="vgg16",
        keras_class="VGG16",
        keras_module="vgg16",
        input_size=(224, 224),
        layers={"fc2": 4096, "fc1": 4096, "flatten": 25088},
        default_layer="fc2",
        imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    ),
    "resnet50": Architecture(
        name="resnet50",
        keras_class="ResNet50",
        keras_module="resnet50",
        input_size=(224, 224),
        layers={POOLED: 2048},
        default_layer=POOLED,
        imagenet_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "efficientnetb0": Architecture(
        name="efficientnetb0",
        keras_class="EfficientNetB0",
        keras_module="efficientnet",
        input_size=(224, 224),
        layers={POOLED: 1280},
        default_layer=POOLED,
        imagenet_file="efficientnetb0_notop.h5",
    ),
    "mobilenetv3small": Architecture(
        name="mobilenetv3small",
        keras_class="MobileNetV3Small",
        keras_module="mobilenet_v3",
        input_size=(224, 224),
        layers={POOLED: 576},
        default_layer=POOLED,
        imagenet_file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    ),
}


@dataclass(frozen=True)
class Weights:
    """What to load (``keras_arg``) and how it is recorded (``identity``)."""

    keras_arg: str | None
    identity: str

    @property
    def pretrained(self) -> bool:
        return not self.identity.startswith("random-")


def resolve_weights(choice: str, seed: int = 0) -> Weights:
    """``imagenet``, ``none`` or the path of a local weights file."""
    if choice == "imagenet":
        return Weights("imagenet", "imagenet")
    if choice == "none":
        return Weights(None, f"random-seed-{seed}")
    path = os.path.abspath(os.path.expanduser(choice))
    if not os.path.isfile(path):
        raise WeightsError(
            f"--weights {choice!r} is neither 'imagenet', 'none' nor an existing weights file"
        )
    return Weights(path, "sha256:" + file_sha256(path))


def _import_keras():
    """Import Keras (and TensorFlow) without the C++ start-up chatter on stderr.

    TensorFlow's absl logging prints before any log level applies, so the
    process's stderr is pointed at /dev/null for the import only; Python
    exceptions still propagate.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            import keras
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return keras


_cache: dict[tuple[str, str, str], Fingerprinter] = {}


class Fingerprinter:
    """A built model that maps a batch of uint8 RGB images to float32 fingerprints."""

    def __init__(self, architecture: Architecture, layer: str, weights: Weights, seed: int):
        keras = _import_keras()

        self.architecture = architecture
        self.layer = layer
        self.weights = weights
        module = getattr(keras.applications, architecture.keras_module)
        self._preprocess = module.preprocess_input
        constructor = getattr(keras.applications, architecture.keras_class)
        if weights.keras_arg is None:
            keras.utils.set_random_seed(seed)
        try:
            if architecture.pooled:
                self._model = constructor(weights=weights.keras_arg, include_top=False, pooling="avg",
                                          input_shape=(*architecture.input_size[::-1], 3))
            else:
                base = constructor(weights=weights.keras_arg, include_top=True)
                self._model = keras.Model(base.input, base.get_layer(layer).output)
        except Exception as e:
            raise WeightsError(self._explain(e)) from None

    def _explain(self, error: Exception) -> str:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if self.weights.keras_arg == "imagenet":
            return (
                f"could not download the ImageNet weights for {self.architecture.name} ({reason}); "
                f"on a machine without internet use --weights PATH with a copy of "
                f"{self.architecture.imagenet_file}, or --weights none for random, not pretrained, weights"
            )
        return f"cannot load weights from {self.weights.keras_arg}: {reason}"

    @property
    def dims(self) -> int:
        return int(self._model.output.shape[-1])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        batch = self._preprocess(np.asarray(pixels, dtype=np.float32))
        return np.asarray(self._model.predict_on_batch(batch), dtype=np.float32)


def load_fingerprinter(model: str, layer: str, weights: Weights, seed: int = 0) -> Fingerprinter:
    """A (cached) fingerprinter; building VGG16 takes seconds, so one per process."""
    key = (model, layer, weights.identity)
    if key not in _cache:
        _cache[key] = Fingerprinter(ARCHITECTURES[model], layer, weights, seed)
    return _cache[key]

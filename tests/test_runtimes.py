"""EfficientNet-Lite0 on its runtimes: PyTorch's fingerprints within float32 tolerance on ONNX Runtime, within
bfloat16's on OpenVINO, from a checked cache.

The real model (its packaged ImageNet weights) on real photos: the Holidays
photos in ../shared/data (skipped with a reason where they are absent).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from importer import runtimes
from importer.folders import file_sha256
from importer.models import BUILT_IN, _normalised, resolve_weights

from .conftest import shared_data

pytestmark = pytest.mark.skipif(not runtimes.available(), reason="onnxruntime and onnx are not installed")
LITE0 = next(a for a in BUILT_IN if a.name == "efficientnet-lite0")


def _fingerprinter(weights: str = "imagenet", precision: str = "float32"):
    model = LITE0.build("avgpool", resolve_weights(LITE0, weights), 0)
    model.prepare("cpu", precision)
    return model


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _photos(count: int) -> np.ndarray:
    paths = sorted(shared_data("holidays_subset").rglob("*.jpg"))[:count]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR)) for p in paths])


def test_fingerprints_on_the_runtime_are_pytorchs_on_real_photos():
    model = _fingerprinter()
    assert model.where() == "CPU with ONNX Runtime"
    pixels = _photos(24)
    found = model(pixels)
    expected = model._torch_features(_normalised(pixels))
    assert found.shape == expected.shape == (24, 1280) and found.dtype == np.float32
    assert float(np.abs(found - expected).max()) <= runtimes.ONNX_RUNTIME.tolerance * float(np.abs(expected).max())
    assert _cosines(found, expected).min() > 0.99999
    # The same photos' nearest neighbours, whichever computed them.
    order = lambda v: np.argsort(((v[:, None] - v[None]) ** 2).sum(-1), axis=1)[:, 1:4]  # noqa: E731
    assert (order(found) == order(expected)).mean() > 0.95


def test_a_missing_or_corrupt_cache_is_made_again(graph_cache):
    model = _fingerprinter("none")  # random weights: a graph of their own
    path = model._graph.path
    assert path.parent == graph_cache and path.is_file()
    digest = path.with_name(path.name + ".sha256")
    pixels = np.random.default_rng(3).integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    before = model(pixels)

    path.write_bytes(b"not a graph")  # corrupt: its hash no longer matches
    again = _fingerprinter("none")
    assert again._graph.path == path and path.stat().st_size > 1_000_000
    assert np.array_equal(again(pixels), before)

    digest.unlink()  # no hash beside it: not trusted
    third = _fingerprinter("none")
    assert digest.is_file() and np.array_equal(third(pixels), before)

    path.write_bytes(b"still not a graph")  # a hash that matches, of a file ONNX Runtime can't load
    digest.write_text(file_sha256(str(path)) + "\n")
    assert np.array_equal(_fingerprinter("none")(pixels), before) and path.stat().st_size > 1_000_000

    path.unlink()  # missing
    assert np.array_equal(_fingerprinter("none")(pixels), before) and path.is_file()


def test_an_export_that_does_not_compute_the_models_features_is_refused(graph_cache):
    model = _fingerprinter("none")
    probe = _normalised(np.zeros((1, 224, 224, 3), np.uint8))
    with pytest.raises(runtimes.GraphError, match="does not compute PyTorch's features"):
        runtimes.load("refused", model._export, lambda x: model._torch_features(x) + 1.0, probe)
    assert not (graph_cache / "refused.onnx").exists() and not list(graph_cache.glob(".refused.*"))


@pytest.mark.skipif(
    not runtimes.available("mixed"), reason="OpenVINO is not installed, or this CPU has no bfloat16 instructions"
)
def test_mixed_precision_runs_on_openvino_in_bfloat16_close_to_float32(graph_cache):
    model = _fingerprinter(precision="mixed")
    assert model.where() == "CPU with OpenVINO in bfloat16"
    assert model._graph.path == graph_cache / "efficientnet-lite0-avgpool-{}.onnx".format(
        model.weights.identity.replace(":", "-")
    )  # the float32 runtime's graph: one export serves both
    pixels = _photos(24)
    found, exact = model(pixels), model._torch_features(_normalised(pixels), "float32")
    autocast = model._torch_features(_normalised(pixels), "mixed")
    assert found.dtype == np.float32 and not np.array_equal(found, exact)  # bfloat16 arithmetic: close, not equal
    assert _cosines(found, exact).min() > 0.99
    # As close to float32 as PyTorch's own bfloat16 autocast comes, within a margin.
    assert np.abs(found - exact).max() <= 1.5 * np.abs(autocast - exact).max()


def test_without_a_runtime_for_its_precision_the_model_runs_on_pytorch(monkeypatch):
    monkeypatch.setenv("IMAGECLUSTER_RUNTIME", "pytorch")
    assert not runtimes.available("float32") and not runtimes.available("mixed")
    model = _fingerprinter(precision="mixed")
    assert model.where() == "CPU" and model._graph is None

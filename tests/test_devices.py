"""Where the model runs and in what precision: chosen without a GPU, recorded with every fingerprint.

CI has no GPU, so the choice is tested as the pure function it is, and the
real model is run on the CPU in both precisions on the real Holidays photos.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from datasette_imagecluster.engine.parameters import SHIPPED
from datasette_imagecluster.library.fingerprints import choose_set, fingerprint_sets, load_library
from importer.devices import CPU, Device, DeviceError, choose, identity

from .conftest import connect, invoke, linked_holidays, shared_data
from .test_quality import MODEL

CUDA, MPS, TF_GPU = Device("cuda", "cuda:0"), Device("mps", "mps"), Device("gpu", "/GPU:0")


@pytest.mark.parametrize(
    "requested, found, expected",
    [
        ("auto", [CPU], CPU),
        ("auto", [CUDA, CPU], CUDA),
        ("auto", [MPS, CPU], MPS),
        ("auto", [TF_GPU, CPU], TF_GPU),
        ("cpu", [CUDA, CPU], CPU),
        ("gpu", [CUDA, CPU], CUDA),
    ],
)
def test_the_device_chosen(requested, found, expected):
    assert choose(requested, found) == expected


def test_a_gpu_asked_for_and_not_there_is_one_line():
    with pytest.raises(DeviceError, match="no GPU is visible"):
        choose("gpu", [CPU])


def test_batch_sizes_follow_the_device():
    assert CPU.batch_size == 32 and CUDA.batch_size == 128


def test_mixed_precision_is_a_fingerprint_set_of_its_own():
    assert identity("imagenet", "float32") == "imagenet"
    assert identity("sha256:ab", "mixed") == "sha256:ab+mixed"


@pytest.fixture(scope="module")
def both_precisions(tmp_path_factory):
    """Twelve Holidays photos (linked, not copied) fingerprinted by the pretrained model in float32 and
    in mixed precision."""
    photos = linked_holidays(tmp_path_factory.mktemp("holidays"), 12)
    db = tmp_path_factory.mktemp("precision") / "photos.db"
    runner = CliRunner()
    full = invoke(runner, "import", db, photos, *MODEL)
    mixed = invoke(runner, "import", db, photos, *MODEL, "--precision", "mixed")
    return db, full.output, mixed.output


def test_mixed_precision_fingerprints_are_stored_apart_and_close(both_precisions):
    db, full_output, mixed_output = both_precisions
    assert "on the CPU" in full_output and "on the CPU" in mixed_output
    conn = connect(db)
    sets = {s.weights: s for s in fingerprint_sets(conn)}
    (full_id,) = [w for w in sets if w.startswith("sha256:") and not w.endswith("+mixed")]
    assert set(sets) == {full_id, full_id + "+mixed"}  # both kept, never one set
    full = load_library(conn, choose_set(list(sets.values()), weights=full_id))
    mixed = load_library(conn, choose_set(list(sets.values()), weights=full_id + "+mixed"))
    assert list(full.ids) == list(mixed.ids)
    a, b = full.vectors.astype(np.float64), mixed.vectors.astype(np.float64)
    cosine = np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cosine.min() > 0.99 and not np.array_equal(a, b)  # bfloat16 arithmetic: close, not equal


def test_the_cli_clusters_the_set_it_is_given(both_precisions):
    db, _, _ = both_precisions
    conn = connect(db)
    (mixed_id,) = [s.weights for s in fingerprint_sets(conn) if s.weights.endswith("+mixed")]
    result = invoke(CliRunner(), "cluster", db, "--weights", mixed_id, "--json", "--sim", str(SHIPPED.sim))
    assert result.output.strip().startswith("[") or result.output.strip().startswith("{")


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="this machine has a GPU: --device gpu would take it"
)
def test_device_gpu_without_one_is_a_one_line_error(tmp_path):
    photos = shared_data("holidays_subset")
    result = invoke(CliRunner(), "import", tmp_path / "p.db", photos, *MODEL, "--device", "gpu", ok=False)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: --device gpu: no GPU is visible to the model's framework; use --device cpu or auto"
    )

"""Third-party plugins: a photo source and a fingerprint model added through the real pluggy hooks.

The example plugin below is a real package on disk: the in-process test
registers its module with the importer's plugin manager, and the
subprocess test finds it the way users install plugins, through the
``imagecluster`` entry-point group.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from importer.plugins import manager

from .conftest import invoke, rows, save_jpeg, scene

PLUGIN = textwrap.dedent(
    '''
    """A shoebox of photos listed in a JSON file, and a tiny model: mean colours on a 4 x 4 grid."""
    import json
    import os
    from dataclasses import dataclass

    import numpy as np

    from importer.catalogs import CatalogPhoto
    from importer.hookspecs import hookimpl
    from importer.models import Architecture, Fingerprinter, Weights
    from importer.plugins import Source


    class Shoebox:
        source = "shoebox"
        snapshot = False

        def __init__(self, path, root_maps):
            self.path = os.path.abspath(path)
            with open(path) as f:
                self.entries = json.load(f)

        def photos(self):
            folder = os.path.dirname(self.path)
            for n, entry in enumerate(self.entries, start=1):
                yield CatalogPhoto(
                    path=os.path.join(folder, entry["file"]),
                    catalog_id=str(n),
                    caption=entry.get("caption"),
                    tags=entry.get("tags", []),
                )

        def preview(self, photo):
            return None

        def close(self):
            pass


    class GridColours(Fingerprinter):
        def __init__(self, architecture, layer, weights):
            self.architecture, self.layer, self.weights, self.dims = architecture, layer, weights, 48

        def __call__(self, pixels):
            n, h, w, _ = pixels.shape
            cells = pixels.reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4))
            return (cells.reshape(n, 48) / 255.0).astype(np.float32)


    @dataclass(frozen=True)
    class GridArchitecture(Architecture):
        def imagenet(self):
            return Weights(None, "grid-v1")  # nothing to load: the model has no weights

        def build(self, layer, weights, seed):
            return GridColours(self, layer, weights)


    @hookimpl
    def register_sources(register):
        register(Source("shoebox", "photos listed in a shoebox.json", Shoebox))


    @hookimpl
    def register_fingerprinters(register):
        register(GridArchitecture("grid-colours", (64, 64), {"grid": 48}, "grid"))
    '''
)


@pytest.fixture
def plugin_dir(tmp_path):
    """The example plugin as an installed distribution: a module and its dist-info with the entry point."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "imagecluster_shoebox.py").write_text(PLUGIN)
    info = folder / "imagecluster_shoebox-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: imagecluster-shoebox\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[imagecluster]\nshoebox = imagecluster_shoebox\n")
    return folder


@pytest.fixture
def registered(plugin_dir, monkeypatch):
    """The example plugin registered with the real plugin manager, for one test (the manager is made
    before the plugin is importable, so its entry point isn't found as well)."""
    pm = manager()
    monkeypatch.syspath_prepend(str(plugin_dir))
    module = importlib.import_module("imagecluster_shoebox")
    pm.register(module, "imagecluster-shoebox")
    try:
        yield module
    finally:
        pm.unregister(name="imagecluster-shoebox")
        sys.modules.pop("imagecluster_shoebox", None)


@pytest.fixture
def shoebox(tmp_path):
    for n in range(4):
        save_jpeg(tmp_path / "box" / f"photo{n}.jpg", scene(n // 2 + 1, variant=n % 2))
    listing = [{"file": f"photo{n}.jpg", "caption": f"card {n}", "tags": ["shoebox"]} for n in range(4)]
    (tmp_path / "box" / "shoebox.json").write_text(json.dumps(listing))
    return tmp_path / "box" / "shoebox.json"


def test_a_plugin_source_and_model_import_through_the_real_hooks(registered, shoebox, runner, tmp_path):
    db = tmp_path / "photos.db"
    args = ("import", str(db), str(shoebox), "--source", "shoebox", "--model", "grid-colours", "--workers", "0")
    result = invoke(runner, *args)
    assert "Imported 4" in result.output
    assert rows(db, "select source, caption from images order by path") == [("shoebox", f"card {n}") for n in range(4)]
    assert rows(db, "select count(*) from tags where tag = 'shoebox'") == [(4,)]
    assert rows(db, "select distinct model, layer, weights, dims from fingerprints") == [
        ("grid-colours", "grid", "grid-v1", 48)
    ]
    again = invoke(runner, *args)  # incremental, as for the built-in sources
    assert "Imported 0, unchanged 4" in again.output
    clusters = json.loads(invoke(runner, "cluster", str(db), "--json", "--sim", "0.5", "--alpha", "0").stdout)
    assert clusters["params"]["model"] == "grid-colours" and clusters["n_images"] == 4


def test_plugins_json_lists_the_built_ins_and_an_installed_plugin(plugin_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "importer", "plugins", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    built_in = listed["importer.default_plugins"]
    assert built_in["sources"] == ["folder", "digikam", "lightroom"]
    assert {"vgg16", "efficientnet-lite0"} <= set(built_in["models"])
    shoebox = listed["shoebox"]  # found through the entry-point group
    assert shoebox["version"] == "0.1" and shoebox["sources"] == ["shoebox"] and shoebox["models"] == ["grid-colours"]
    assert shoebox["hooks"] == ["register_fingerprinters", "register_sources"]


@pytest.mark.parametrize(
    "args,message",
    [
        (("--source", "nope"), "'nope' is not a registered source: choose one of folder, digikam, lightroom"),
        (("--model", "nope"), "'nope' is not a registered model: choose one of vgg16"),
        (("--root-map", "/a=/b"), "--root-map applies to a catalog source, not to folders"),
    ],
)
def test_unknown_sources_and_models_are_one_line_errors(runner, tmp_path, args, message):
    result = invoke(runner, "import", str(tmp_path / "photos.db"), str(tmp_path), *args, ok=False)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_plugin_registering_a_taken_name_is_a_one_line_error(registered, runner):
    from importer.hookspecs import hookimpl
    from importer.plugins import Source

    class Impostor:
        @hookimpl
        def register_sources(self, register):
            register(Source("digikam", "another digikam"))

    manager().register(Impostor(), "impostor")
    try:
        result = invoke(runner, "plugins", ok=False)
    finally:
        manager().unregister(name="impostor")
    assert result.exit_code == 1
    assert "plugins importer.default_plugins and impostor both register a source named 'digikam'" in result.output


def test_a_fingerprint_that_is_not_finite_is_a_problem_retried_next_time(runner, tmp_path):
    """A model's NaN or infinity (16-bit arithmetic can overflow) is recorded as a problem, not stored, and
    the photo is tried again by the next run: the file is not at fault."""
    from dataclasses import dataclass

    import numpy as np
    from PIL import Image

    from importer.hookspecs import hookimpl
    from importer.models import Architecture, Fingerprinter, Weights

    fingerprinted = []  # photos per call of the model

    class MeanColour(Fingerprinter):
        def __init__(self, architecture, layer, weights):
            self.architecture, self.layer, self.weights, self.dims = architecture, layer, weights, 3

        def __call__(self, pixels):
            fingerprinted.append(len(pixels))
            means = pixels.mean(axis=(1, 2)).astype(np.float32)
            means[means.min(axis=1) > 250] = np.inf  # a white photo overflows
            return means

    @dataclass(frozen=True)
    class MeanColourArchitecture(Architecture):
        def imagenet(self):
            return Weights(None, "mean-colour-v1")

        def build(self, layer, weights, seed):
            return MeanColour(self, layer, weights)

    class Overflowing:
        @hookimpl
        def register_fingerprinters(self, register):
            register(MeanColourArchitecture("mean-colour", (32, 32), {"mean": 3}, "mean"))

    for n in range(2):
        save_jpeg(tmp_path / "photos" / f"scene{n}.jpg", scene(n + 1))
    save_jpeg(tmp_path / "photos" / "white.jpg", Image.new("RGB", (64, 48), "white"))
    db = tmp_path / "photos.db"
    args = ("import", db, tmp_path / "photos", "--model", "mean-colour", "--workers", "0")
    manager().register(Overflowing(), "overflowing")
    try:
        first = invoke(runner, *args)
        assert sum(fingerprinted) == 3
        again = invoke(runner, *args)
    finally:
        manager().unregister(name="overflowing")
    assert "Imported 2, unchanged 0" in first.output and "failed 1" in first.output
    assert "Imported 0, unchanged 2" in again.output and "failed 1" in again.output
    assert sum(fingerprinted) == 4  # the white photo was tried again, the others not
    assert rows(db, "select count(*) from fingerprints") == [(2,)]
    assert rows(db, "select count(*) from images where path like '%white.jpg'") == [(0,)]
    assert rows(db, "select path, stage, message, size from import_errors") == [
        (str(tmp_path / "photos" / "white.jpg"), "fingerprint", "the model gave NaN or infinite values for it", None)
    ]

"""``imagecluster import`` end to end, with random seeded weights on generated photos."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from datasette_imagecluster.library.schema import SCHEMA_VERSION
from datasette_imagecluster.library.vectors import decode as decode_vector
from importer.pipeline import ImportOptions, run_import

from .conftest import invoke, rows, save_jpeg, scene

OPTIONS = dict(weights="none", workers=0, batch_size=4)


def do_import(db, *roots, **overrides):
    return run_import(str(db), [str(r) for r in roots], ImportOptions(**{**OPTIONS, **overrides}))


def test_first_import_writes_every_table(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    summary = do_import(db, photo_folder)
    assert (summary.imported, summary.failed, summary.model_loaded) == (6, 0, True)
    images = rows(
        db,
        "select path, folder, name, format, width, height, taken, timestamp_source, "
        "source, sha256, size from images order by path",
    )
    assert len(images) == 6
    assert images[0][0] == str(photo_folder / "c.jpg")
    assert {i[3] for i in images} == {"JPEG"}
    assert {i[7] for i in images} == {"exif:DateTimeOriginal"}
    assert all(i[4:6] == (480, 360) and i[8] == "folder" and len(i[9]) == 64 for i in images)
    taken = dict((os.path.basename(i[0]), i[6]) for i in images)
    assert taken["a2.jpg"] == "2021-06-01T10:00:05"
    fps = rows(db, "select model, layer, weights, dims, length(vector) from fingerprints")
    assert fps == [("efficientnet-lite0", "avgpool", "random-seed-0", 1280, 1280 * 4)] * 6  # the default model
    thumbs = rows(db, "select count(*), max(max(width, height)) from thumbnails")
    assert thumbs == [(6, 320)]
    assert rows(db, "pragma user_version") == [(SCHEMA_VERSION,)]
    assert rows(db, "pragma journal_mode") == [("wal",)]
    assert rows(db, "pragma foreign_key_check") == []


def test_fingerprints_are_deterministic_and_near_duplicates_are_closer(tmp_path, photo_folder):
    do_import(tmp_path / "one.db", photo_folder)
    do_import(tmp_path / "two.db", photo_folder, batch_size=3)

    def get(db):
        return {
            n: decode_vector(v)
            for n, v in rows(db, "select name, vector from images join fingerprints on image_id = id")
        }

    one, two = get(tmp_path / "one.db"), get(tmp_path / "two.db")
    for name in one:
        np.testing.assert_allclose(one[name], two[name], rtol=1e-4, atol=1e-5)
    near = np.linalg.norm(one["a1.jpg"] - one["a2.jpg"])
    far = np.linalg.norm(one["a1.jpg"] - one["b1.jpg"])
    assert near < far


def test_rerun_over_unchanged_library_reads_nothing_and_loads_no_model(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    before = rows(db, "select id, imported_at from images order by id")
    summary = do_import(db, photo_folder)
    assert (summary.imported, summary.unchanged, summary.model_loaded) == (0, 6, False)
    assert rows(db, "select id, imported_at from images order by id") == before


def test_new_photos_are_added_incrementally(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    save_jpeg(photo_folder / "new" / "d.jpg", scene(9), taken="2024:01:01 00:00:00")
    summary = do_import(db, photo_folder)
    assert (summary.imported, summary.unchanged) == (1, 6)
    assert rows(db, "select count(*) from fingerprints") == [(7,)]


def test_moved_and_renamed_files_keep_id_and_fingerprint(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    ((image_id, vector),) = rows(
        db, "select id, vector from images join fingerprints on image_id = id where name = 'b1.jpg'"
    )
    (photo_folder / "archive").mkdir()
    os.rename(photo_folder / "home" / "b1.jpg", photo_folder / "archive" / "renamed.jpg")
    summary = do_import(db, photo_folder)
    assert (summary.moved, summary.imported, summary.vanished, summary.model_loaded) == (1, 0, [], False)
    assert rows(
        db,
        "select id, vector from images join fingerprints on image_id = id where path = ?",
        (str(photo_folder / "archive" / "renamed.jpg"),),
    ) == [(image_id, vector)]
    assert rows(db, "select count(*) from images") == [(6,)]


def test_a_copy_reuses_the_fingerprint_without_decoding(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    shutil.copy2(photo_folder / "c.jpg", photo_folder / "c-copy.jpg")
    summary = do_import(db, photo_folder)
    assert (summary.copied, summary.imported, summary.model_loaded) == (1, 0, False)
    got = rows(
        db,
        "select count(distinct i.id), count(distinct f.vector), count(distinct t.jpeg) from images i "
        "join fingerprints f on f.image_id = i.id join thumbnails t on t.image_id = i.id "
        "where i.sha256 = (select sha256 from images where name = 'c.jpg')",
    )
    assert got == [(2, 1, 1)]


def test_changed_content_is_fingerprinted_again(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    ((old_id, old_vector),) = rows(
        db, "select id, vector from images join fingerprints on image_id = id where name = 'c.jpg'"
    )
    save_jpeg(photo_folder / "c.jpg", scene(42), taken="2023:03:03 03:03:03")
    os.utime(photo_folder / "c.jpg", (1e9, 1e9))
    summary = do_import(db, photo_folder)
    assert summary.imported == 1
    ((new_id, new_vector),) = rows(
        db, "select id, vector from images join fingerprints on image_id = id where name = 'c.jpg'"
    )
    assert new_id == old_id and new_vector != old_vector


def test_touched_file_with_same_content_is_not_decoded(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    os.utime(photo_folder / "c.jpg", (1.5e9, 1.5e9))
    summary = do_import(db, photo_folder)
    assert (summary.unchanged, summary.imported, summary.model_loaded) == (6, 0, False)
    assert rows(db, "select mtime from images where name = 'c.jpg'") == [(1.5e9,)]


def test_another_layer_adds_a_second_fingerprint_set(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder, model="vgg16")
    summary = do_import(db, photo_folder, layer="fc1")  # the database's one model, vgg16, at another layer
    assert summary.imported == 6
    assert rows(db, "select layer, count(*) from fingerprints group by layer order by layer") == [
        ("fc1", 6),
        ("fc2", 6),
    ]
    assert rows(db, "select count(*) from images") == [(6,)]


def test_vanished_photos_are_reported_then_pruned(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    shutil.rmtree(photo_folder / "home")
    summary = do_import(db, photo_folder)
    assert sorted(os.path.basename(p) for p in summary.vanished) == ["b1.jpg", "b2.jpg"]
    assert rows(db, "select count(*) from images") == [(6,)]
    summary = do_import(db, photo_folder, prune=True)
    assert summary.pruned == 2
    assert rows(db, "select count(*) from images") == [(4,)]
    assert rows(db, "select count(*) from fingerprints") == [(4,)]
    assert rows(db, "select count(*) from thumbnails") == [(4,)]


def test_a_vanished_file_outside_the_imported_root_is_left_alone(tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    do_import(db, photo_folder)
    shutil.rmtree(photo_folder / "home")
    summary = do_import(db, photo_folder / "trip", prune=True)
    assert summary.vanished == [] and rows(db, "select count(*) from images") == [(6,)]


def test_bad_files_get_one_error_row_each_and_the_import_goes_on(tmp_path, photo_folder):
    bad = photo_folder / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "text.jpg").write_text("not a photo")
    good = (photo_folder / "c.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (bad / "notes.txt").write_text("an ordinary text file, not ours")
    (bad / "named.png").write_bytes(good)  # a JPEG under a PNG name: imported by content
    (bad / "noextension").write_bytes(good[:-2] + b"\x00\xff\xd9")  # a JPEG with no extension
    os.mkfifo(bad / "pipe.jpg")
    os.symlink(bad / "missing.jpg", bad / "dangling.jpg")
    os.symlink(photo_folder, bad / "loop")  # a symlink loop back to the root
    db = tmp_path / "photos.db"
    summary = do_import(db, photo_folder)
    errors = dict(
        rows(db, "select replace(path, ?, ''), stage || ': ' || message from import_errors", (str(bad) + "/",))
    )
    assert set(errors) == {"empty.jpg", "text.jpg", "truncated.jpg", "pipe.jpg", "dangling.jpg"}
    assert errors["empty.jpg"] == "decode: empty file"
    assert "not an image" in errors["text.jpg"]
    assert "truncated" in errors["truncated.jpg"]
    assert "FIFO" in errors["pipe.jpg"]
    assert "broken symbolic link" in errors["dangling.jpg"]
    assert all("\n" not in m for m in errors.values())
    assert (summary.imported, summary.failed, summary.not_photos) == (8, 5, 1)
    names = {n for (n,) in rows(db, "select name from images")}
    assert {"named.png", "noextension"} <= names
    # Unchanged failures are not retried...
    again = do_import(db, photo_folder)
    assert (again.still_failing, again.imported, again.unchanged) == (3, 0, 8)
    # ...and an error row goes once its file imports.
    (bad / "truncated.jpg").write_bytes(good)
    do_import(db, photo_folder)
    assert "truncated.jpg" not in {os.path.basename(p) for (p,) in rows(db, "select path from import_errors")}


def test_non_utf8_file_names_are_reported_not_fatal(tmp_path, photo_folder):
    raw = os.path.join(os.fsencode(photo_folder), b"caf\xe9.jpg")
    with open(raw, "wb") as f:
        f.write((photo_folder / "c.jpg").read_bytes())
    db = tmp_path / "photos.db"
    summary = do_import(db, photo_folder)
    assert summary.imported == 6
    ((path, message),) = rows(db, "select path, message from import_errors")
    assert path.endswith("caf\\xe9.jpg") and "not valid UTF-8" in message


def test_unreadable_folder_is_reported():
    """Walked as an ordinary user: root reads folders whatever their permissions."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    work = Path(tempfile.mkdtemp(prefix="imagecluster-perm-"))  # /tmp: traversable by all
    try:
        work.chmod(0o777)
        photos = work / "photos"
        save_jpeg(photos / "ok.jpg", scene(4))
        save_jpeg(photos / "locked" / "secret.jpg", scene(5))
        photos.chmod(0o777)
        (photos / "locked").chmod(0)
        db = work / "photos.db"
        command = [
            sys.executable,
            "-c",
            "from importer.cli import cli; cli()",
            "import",
            str(db),
            str(photos),
            "--weights",
            "none",
            "--workers",
            "0",
            "-s",
        ]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
        env = {**os.environ, "HOME": str(work), "PYTHONPATH": os.pathsep.join(sys.path)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "Imported 1," in done.stdout and "failed 1" in done.stdout
        assert rows(db, "select stage, message from import_errors where path = ?", (str(photos / "locked"),)) == [
            ("read", "cannot read folder: Permission denied")
        ]
    finally:
        (work / "photos" / "locked").chmod(0o755)
        shutil.rmtree(work)


def test_workers_decode_in_processes_with_the_same_result(tmp_path, photo_folder):
    do_import(tmp_path / "inline.db", photo_folder)
    summary = do_import(tmp_path / "pool.db", photo_folder, workers=2)
    assert summary.imported == 6
    sql = "select name, sha256, taken, width, height from images order by name"
    assert rows(tmp_path / "pool.db", sql) == rows(tmp_path / "inline.db", sql)


# -- the command line ---------------------------------------------------------


def test_cli_import_then_cluster(runner, tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    result = invoke(runner, "import", db, photo_folder, "--weights", "none", "--workers", "0", "-s")
    assert "Imported 6, unchanged 0" in result.output
    assert "random weights (random-seed-0), not a pretrained model" in result.output
    again = invoke(runner, "import", db, photo_folder, "--weights", "none", "-s")
    assert "Imported 0, unchanged 6" in again.output
    out = invoke(runner, "cluster", db, "--sim", "0.8", "--alpha", "1").output
    assert "#images : #clusters" in out and "#images in clusters total:" in out
    report = _json(invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.99", "--json").output)
    groups = sorted(sorted(os.path.basename(i["path"]) for i in c["images"]) for c in report["clusters"])
    assert groups == [["a1.jpg", "a2.jpg", "a3.jpg"], ["b1.jpg", "b2.jpg"]]
    assert report["params"]["weights"] == "random-seed-0"
    assert {"id", "path", "taken"} <= set(report["clusters"][0]["images"][0])


def _json(output: str) -> dict:
    return json.loads(output[output.index("{") : output.rindex("}") + 1])


def test_cli_links_and_save(runner, tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    invoke(runner, "import", db, photo_folder, "--weights", "none", "--workers", "0", "-s")
    (photo_folder / "other").mkdir()
    shutil.copy2(photo_folder / "trip" / "a1.jpg", photo_folder / "other" / "a1.jpg")
    invoke(runner, "import", db, photo_folder, "--weights", "none", "-s")
    links = tmp_path / "clusters"
    invoke(
        runner,
        "cluster",
        db,
        "--alpha",
        "1",
        "--sim",
        "0.99",
        "--method",
        "average",
        "--links",
        links,
        "--save",
        "bursts",
    )
    made = sorted(str(p.relative_to(links)) for p in links.rglob("*.jpg"))
    assert made == [
        "cluster_with_2/cluster_0/b1.jpg",
        "cluster_with_2/cluster_0/b2.jpg",
        "cluster_with_4/cluster_0/a1.jpg",
        "cluster_with_4/cluster_0/a1~2.jpg",
        "cluster_with_4/cluster_0/a2.jpg",
        "cluster_with_4/cluster_0/a3.jpg",
    ]
    assert all(os.path.isabs(os.readlink(p)) and p.resolve().exists() for p in links.rglob("*.jpg"))
    # A re-run replaces its own folder, and never a folder of the user's.
    invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.99", "--method", "average", "--links", links)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("precious")
    refused = invoke(runner, "cluster", db, "--links", mine, ok=False)
    assert refused.exit_code == 1 and "was not made by" in refused.output
    assert (mine / "keep.txt").read_text() == "precious"
    saved = rows(
        db,
        "select c.name, c.sim, c.alpha, c.method, c.weights, c.n_clusters, m.cluster, "
        "count(*) from clusterings c join cluster_members m on m.clustering_id = c.id "
        "group by m.cluster order by m.cluster",
    )
    assert saved == [
        ("bursts", 0.99, 1.0, "average", "random-seed-0", 2, 1, 4),
        ("bursts", 0.99, 1.0, "average", "random-seed-0", 2, 2, 2),
    ]
    invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.5", "--save", "bursts")
    # Saving again adds a version and keeps the first (imagecluster diff compares them).
    assert rows(db, "select version, sim from clusterings order by version") == [(1, 0.99), (2, 0.5)]
    assert rows(
        db,
        "select count(*) from cluster_members m left join clusterings c on c.id = m.clustering_id where c.id is null",
    ) == [(0,)]


def test_cli_imagenet_weights_offline_is_a_one_line_error(runner, tmp_path, photo_folder, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no cached weights
    args = ("--model", "vgg16", "--workers", "0", "-s")
    result = invoke(runner, "import", tmp_path / "photos.db", photo_folder, *args, ok=False)
    assert result.exit_code == 1
    # Keras announces the download on stdout; then one line says what went wrong and what to do.
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output and len(lines) <= 2
    assert lines[-1].startswith("Error: could not download the ImageNet weights")
    assert "--weights PATH" in lines[-1] and "--weights none" in lines[-1]


def test_cli_weights_file_is_identified_by_its_hash(runner, tmp_path, photo_folder):
    """A local weights file in the format of Keras' ImageNet download (legacy HDF5)."""
    import hashlib

    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(5)
    weights_file = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    with h5py.File(weights_file, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, keras.applications.VGG16(weights=None))
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    db = tmp_path / "photos.db"
    vgg16 = ("--model", "vgg16")
    result = invoke(runner, "import", db, photo_folder, *vgg16, "--weights", weights_file, "--workers", "0", "-s")
    assert "not a pretrained model" not in result.output
    assert rows(db, "select distinct weights from fingerprints") == [(f"sha256:{digest}",)]
    # The file holds exactly the seed-5 random model: same fingerprints.
    invoke(
        runner,
        "import",
        tmp_path / "seed5.db",
        photo_folder,
        *vgg16,
        "--weights",
        "none",
        "--seed",
        "5",
        "--workers",
        "0",
        "-s",
    )
    sql = "select name, vector from images join fingerprints on image_id = id order by name"
    for (name, a), (_, b) in zip(rows(db, sql), rows(tmp_path / "seed5.db", sql)):
        np.testing.assert_allclose(decode_vector(a), decode_vector(b), rtol=1e-4, atol=1e-5, err_msg=name)
    weights_file.unlink()
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not weights")
    result = invoke(
        runner, "import", tmp_path / "b.db", photo_folder, *vgg16, "--weights", bad, "--workers", "0", ok=False
    )
    assert result.exit_code == 1 and "cannot load weights from" in result.output
    assert len(result.output.strip().splitlines()) == 1
    missing = invoke(runner, "import", db, photo_folder, *vgg16, "--weights", tmp_path / "nope.h5", ok=False)
    assert missing.exit_code == 1 and "neither 'imagenet', 'none' nor an existing weights file" in missing.output


def test_cli_exit_codes_for_nothing_to_read(runner, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke(runner, "import", tmp_path / "a.db", empty, "--weights", "none", ok=False)
    assert result.exit_code == 1 and "no photos found" in result.output
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.jpg").write_bytes(b"\xff\xd8\xff garbage")
    result = invoke(runner, "import", tmp_path / "b.db", broken, "--weights", "none", "--workers", "0", ok=False)
    assert result.exit_code == 1 and "nothing could be read" in result.output
    result = invoke(runner, "import", tmp_path / "c.db", tmp_path / "missing", ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "missing does not exist" in result.output and "imagecluster sample" in result.output


def test_cli_database_that_cannot_be_written(runner, tmp_path, photo_folder):
    not_db = tmp_path / "photo.db"
    not_db.write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 200)
    result = invoke(runner, "import", not_db, photo_folder, "--weights", "none", ok=False)
    assert result.exit_code == 1 and result.output.startswith("Error: cannot write the database")
    assert len(result.output.strip().splitlines()) == 1
    assert not_db.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("model, dims", [("resnet50", 2048), ("efficientnetb0", 1280), ("mobilenetv3small", 576)])
def test_faster_models_record_their_identity(tmp_path, photo_folder, model, dims):
    db = tmp_path / "photos.db"
    summary = do_import(db, photo_folder, model=model)
    assert summary.imported == 6
    assert rows(db, "select distinct model, layer, weights, dims from fingerprints") == [
        (model, "avgpool", "random-seed-0", dims)
    ]
    # Its fingerprints form a set of their own beside vgg16's.
    do_import(db, photo_folder, model="vgg16")
    assert rows(db, "select count(distinct model) from fingerprints") == [(2,)]


def test_without_a_model_a_library_keeps_its_one_model_else_gets_the_offline_default(
    runner, tmp_path, photo_folder, monkeypatch
):
    """No --model: a new library gets EfficientNet-Lite0 (its weights install with a package: no download);
    a library fingerprinted with one model keeps it and is not fingerprinted again; with two, the default."""
    from importer.pipeline import DEFAULT_MODEL

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no Keras weights at hand, and no internet needed
    new = tmp_path / "new.db"
    result = invoke(runner, "import", new, photo_folder, "--workers", "0", "-s")
    assert DEFAULT_MODEL == "efficientnet-lite0" and "Imported 6," in result.output
    assert "random weights" not in result.output and "with ONNX Runtime" in result.output
    found = rows(new, "select distinct model, layer, weights from fingerprints")
    assert [f[:2] for f in found] == [("efficientnet-lite0", "avgpool")] and found[0][2].startswith("sha256:")
    kept = tmp_path / "kept.db"
    do_import(kept, photo_folder, model="vgg16", layer="fc1")
    save_jpeg(photo_folder / "later.jpg", scene(9), taken="2024:01:01 00:00:00")
    summary = do_import(kept, photo_folder)
    assert (summary.imported, summary.unchanged) == (1, 6)
    assert rows(kept, "select model, layer, count(*) from fingerprints group by 1, 2") == [("vgg16", "fc1", 7)]
    do_import(kept, photo_folder, model="resnet50")  # two sets now: which to keep is not for us to guess
    do_import(kept, photo_folder)
    assert rows(kept, "select model, count(*) from fingerprints group by 1 order by 1") == [
        ("efficientnet-lite0", 7),
        ("resnet50", 7),
        ("vgg16", 7),
    ]


def test_a_layer_the_model_lacks_is_refused(runner, tmp_path, photo_folder):
    result = invoke(
        runner,
        "import",
        tmp_path / "p.db",
        photo_folder,
        "--model",
        "resnet50",
        "--layer",
        "fc2",
        "--weights",
        "none",
        ok=False,
    )
    assert result.exit_code == 1 and "resnet50 has no layer 'fc2'" in result.output


def test_raw_files_import_in_folder_imports(tmp_path, photo_folder):
    pytest.importorskip("rawpy", reason="rawpy is part of the importer extra")
    from .test_decode import _dng

    (photo_folder / "raw").mkdir()
    _dng(photo_folder / "raw" / "IMG_0001.DNG")
    db = tmp_path / "photos.db"
    summary = do_import(db, photo_folder)
    assert (summary.imported, summary.failed) == (7, 0)
    assert rows(db, "select format, camera_model, timestamp_source from images where name = 'IMG_0001.DNG'") == [
        ("DNG", "TestCam", "exif:DateTime")
    ]


def test_store_writes_outside_a_transaction_are_refused(tmp_path):
    from importer.folders import Problem
    from importer.store import Store

    store = Store(str(tmp_path / "photos.db"))
    try:
        with pytest.raises(AssertionError, match="inside a transaction"):
            store.record_problem(Problem(str(tmp_path / "x.jpg"), "read", "cannot read"))
        with store.transaction():
            store.record_problem(Problem(str(tmp_path / "x.jpg"), "read", "cannot read"))
        with pytest.raises(AssertionError, match="don't nest"), store.transaction(), store.transaction():
            pass
    finally:
        store.close()
    assert rows(tmp_path / "photos.db", "select path, message from import_errors") == [
        (str(tmp_path / "x.jpg"), "cannot read")
    ]

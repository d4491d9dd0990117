"""The Datasette plugin installs, registers, and serves without TensorFlow or the importer."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import sqlite_utils
from datasette.app import Datasette

from datasette_imagecluster.vectors import encode


@pytest.fixture
def fingerprint_db(tmp_path):
    path = tmp_path / "photos.db"
    db = sqlite_utils.Database(path)
    db["fingerprints"].insert_all(
        [{"image_id": 1, "vector": encode(np.array([1.5, -2.0, 0.25]))},
         {"image_id": 2, "vector": b"abc"}]
    )
    db.conn.close()
    return path


@pytest.mark.asyncio
async def test_plugin_is_registered(fingerprint_db):
    ds = Datasette([str(fingerprint_db)])
    response = await ds.client.get("/-/plugins.json")
    assert response.status_code == 200
    plugins = response.json()
    plugins = plugins if isinstance(plugins, list) else plugins.get("plugins", [])
    ours = [p for p in plugins if p["name"] == "datasette-imagecluster"]
    assert ours and "prepare_connection" in ours[0]["hooks"]


@pytest.mark.asyncio
async def test_sql_functions_decode_fingerprints(fingerprint_db):
    ds = Datasette([str(fingerprint_db)])
    response = await ds.client.get(
        "/photos.json?_shape=array&sql=select imagecluster_dims(vector) as d, "
        "imagecluster_vector(vector) as v from fingerprints where image_id = 1",
        follow_redirects=True,
    )
    assert response.status_code == 200, response.text
    row = response.json()[0]
    assert row["d"] == 3 and json.loads(row["v"]) == [1.5, -2.0, 0.25]


@pytest.mark.asyncio
async def test_bad_blob_is_an_sql_error_not_a_crash(fingerprint_db):
    ds = Datasette([str(fingerprint_db)])
    response = await ds.client.get(
        "/photos.json?sql=select imagecluster_dims(vector) from fingerprints where image_id = 2",
        follow_redirects=True,
    )
    assert response.status_code == 400


def test_plugin_never_imports_tensorflow_or_the_importer():
    code = (
        "import sys, datasette_imagecluster, datasette_imagecluster.clustering, "
        "datasette_imagecluster.fingerprints, datasette_imagecluster.results, datasette_imagecluster.schema\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'importer', 'PIL', 'exifread')]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

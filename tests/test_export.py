"""Clusters handed back: XMP sidecars read back with exiftool, and CSV/JSON exports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess

import pytest

from .conftest import invoke, shared_data

ARGS = ("--weights", "none", "--workers", "0", "-s")
KEYWORD_TAGS = {"XMP-dc:Subject", "XMP-lr:HierarchicalSubject", "XMP-digiKam:TagsList"}
EXISTING = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:digiKam="http://www.digikam.org/ns/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="4" darktable:xmp_version="3">
   <!-- written by hand -->
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Sunset</rdf:li></rdf:Alt></dc:title>
   <dc:subject><rdf:Bag><rdf:li>Paris</rdf:li><rdf:li>cluster-0009</rdf:li></rdf:Bag></dc:subject>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|Paris</rdf:li><rdf:li>imagecluster|other|cluster-0001</rdf:li>
    <rdf:li>imagecluster|bursts|cluster-0009</rdf:li></rdf:Bag></lr:hierarchicalSubject>
   <digiKam:TagsList><rdf:Seq><rdf:li>Places/Paris</rdf:li><rdf:li>imagecluster/bursts/cluster-0009</rdf:li>
    </rdf:Seq></digiKam:TagsList>
   <darktable:history><rdf:Seq><rdf:li darktable:operation="exposure" darktable:enabled="1"/></rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
"""


def exiftool(path) -> dict:
    if not shutil.which("exiftool"):
        if os.environ.get("CI"):
            pytest.fail("exiftool is not installed: .ci/run must install libimage-exiftool-perl")
        pytest.skip("exiftool not installed (apt-get install libimage-exiftool-perl)")
    out = subprocess.run(
        ["exiftool", "-j", "-a", "-G1", "-struct", str(path)], capture_output=True, text=True, check=True
    ).stdout
    tags = json.loads(out)[0]
    return {k: v for k, v in tags.items() if not k.startswith(("System:", "File:", "ExifTool:")) and k != "SourceFile"}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture
def clustered(runner, tmp_path, photo_folder):
    db = tmp_path / "photos.db"
    invoke(runner, "import", db, photo_folder, *ARGS)
    invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.99", "--save", "bursts")
    return db, photo_folder


def test_sidecars_carry_cluster_keywords_that_exiftool_reads(runner, clustered):
    db, photos = clustered
    originals = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.rglob("*.jpg")}
    result = invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers")
    assert "5 sidecar(s) written" in result.output
    tags = exiftool(photos / "trip" / "a2.jpg.xmp")
    assert as_list(tags["XMP-lr:HierarchicalSubject"]) == ["imagecluster|bursts|cluster-0001"]
    assert as_list(tags["XMP-digiKam:TagsList"]) == ["imagecluster/bursts/cluster-0001"]
    assert as_list(tags["XMP-dc:Subject"]) == ["cluster-0001"]
    assert as_list(exiftool(photos / "home" / "b1.jpg.xmp")["XMP-lr:HierarchicalSubject"]) == [
        "imagecluster|bursts|cluster-0002"
    ]
    assert not (photos / "c.jpg.xmp").exists()  # in no cluster: no sidecar made
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in photos.rglob("*.jpg")} == originals


# As ElementTree writes XMP: generated ns0:/ns1: prefixes (ElementTree itself refuses to register them).
ELEMENTTREE_STYLE = """<?xml version='1.0' encoding='utf-8'?>
<ns0:xmpmeta xmlns:ns0="adobe:ns:meta/" xmlns:ns1="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:ns2="http://ns.adobe.com/xap/1.0/" xmlns:ns3="http://purl.org/dc/elements/1.1/">
 <ns1:RDF><ns1:Description ns1:about="" ns2:Rating="3" ns2:Label="Red">
  <ns3:subject><ns1:Bag><ns1:li>Paris</ns1:li></ns1:Bag></ns3:subject>
 </ns1:Description></ns1:RDF>
</ns0:xmpmeta>
"""


def test_a_sidecar_with_ns0_prefixes_is_merged_keeping_every_field(runner, clustered):
    import xml.etree.ElementTree as ET

    db, photos = clustered
    sidecar = photos / "trip" / "a1.jpg.xmp"
    sidecar.write_text(ELEMENTTREE_STYLE, encoding="utf-8")
    before = exiftool(sidecar)
    registry = dict(ET._namespace_map)
    result = invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers")
    assert "Traceback" not in result.output
    after = exiftool(sidecar)
    assert {k: v for k, v in after.items() if k not in KEYWORD_TAGS} == {
        k: v for k, v in before.items() if k not in KEYWORD_TAGS
    }
    assert after["XMP-xmp:Rating"] == 3 and after["XMP-xmp:Label"] == "Red"
    assert sorted(as_list(after["XMP-dc:Subject"])) == ["Paris", "cluster-0001"]
    assert as_list(after["XMP-lr:HierarchicalSubject"]) == ["imagecluster|bursts|cluster-0001"]
    text = sidecar.read_text(encoding="utf-8")
    assert "ns2:Rating" in text and text.startswith("<?xml")  # the file's own prefixes and declaration stay
    assert dict(ET._namespace_map) == registry  # no process-wide namespace registry was touched


def test_an_existing_sidecar_keeps_every_field_and_other_keywords(runner, clustered):
    db, photos = clustered
    sidecar = photos / "trip" / "a1.jpg.xmp"
    sidecar.write_text(EXISTING, encoding="utf-8")
    before = exiftool(sidecar)
    invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers")
    after = exiftool(sidecar)
    assert {k: v for k, v in after.items() if k not in KEYWORD_TAGS} == {
        k: v for k, v in before.items() if k not in KEYWORD_TAGS
    }
    assert after["XMP-xmp:Rating"] == 4 and after["XMP-dc:Title"] == "Sunset"
    assert sorted(as_list(after["XMP-lr:HierarchicalSubject"])) == [
        "Places|Paris",
        "imagecluster|bursts|cluster-0001",
        "imagecluster|other|cluster-0001",
    ]
    assert sorted(as_list(after["XMP-digiKam:TagsList"])) == ["Places/Paris", "imagecluster/bursts/cluster-0001"]
    assert sorted(as_list(after["XMP-dc:Subject"])) == ["Paris", "cluster-0001"]
    text = sidecar.read_text(encoding="utf-8")
    assert text.startswith("<?xpacket begin=") and text.rstrip().endswith('<?xpacket end="w"?>')
    assert "written by hand" in text and 'darktable:operation="exposure"' in text


def test_reexport_replaces_only_this_clusterings_keywords(runner, clustered):
    db, photos = clustered
    invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers")
    invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.99", "--min-csize", "3", "--save", "bursts")
    invoke(runner, "cluster", db, "--alpha", "1", "--sim", "0.5", "--save", "coarse")
    invoke(runner, "export-xmp", db, "--clustering", "coarse", "--no-keepers")
    result = invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers")
    for sidecar in photos.rglob("*.xmp"):
        keywords = as_list(exiftool(sidecar).get("XMP-lr:HierarchicalSubject", []))
        assert len([k for k in keywords if k.startswith("imagecluster|bursts|")]) <= 1
        assert len([k for k in keywords if k.startswith("imagecluster|coarse|")]) == 1
    assert "-imagecluster|bursts|cluster-0002" in result.output  # b1 and b2 left the clustering
    assert not [
        k
        for k in as_list(exiftool(photos / "home" / "b1.jpg.xmp").get("XMP-lr:HierarchicalSubject", []))
        if k.startswith("imagecluster|bursts|")
    ]


def test_dry_run_writes_nothing_and_replaced_names(runner, clustered):
    db, photos = clustered
    result = invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers", "--dry-run")
    assert "would update" in result.output and not list(photos.rglob("*.xmp"))
    invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers", "--sidecar", "replaced")
    assert (photos / "trip" / "a1.xmp").exists() and not (photos / "trip" / "a1.jpg.xmp").exists()


def test_real_sidecars_keep_all_their_fields(runner, clustered):
    db, photos = clustered
    samples = shared_data("xmp_samples")
    real = {
        "trip/a1.jpg.xmp": samples / "digikam_tests" / "_27A1434.JPG.xmp",
        "trip/a2.jpg.xmp": samples / "lightroom_lrcat_embedded_xmp" / "image86_GoldenGateBridge-001.jpg.xmp",
        "home/b1.jpg.xmp": samples / "photoprism_testdata" / "digikam_aurora.jpg.xmp",
    }
    before = {}
    for name, source in real.items():
        shutil.copy(source, photos / name)
        before[name] = exiftool(photos / name)
    invoke(runner, "export-xmp", db, "--clustering", "bursts", "--no-keepers")
    for name in real:
        after = exiftool(photos / name)
        assert {k: v for k, v in after.items() if k not in KEYWORD_TAGS} == {
            k: v for k, v in before[name].items() if k not in KEYWORD_TAGS
        }, name
        old = as_list(before[name].get("XMP-lr:HierarchicalSubject", []))
        new = as_list(after["XMP-lr:HierarchicalSubject"])
        assert set(old) <= set(new) and any(k.startswith("imagecluster|bursts|") for k in new)


def test_export_csv_and_json(runner, clustered):
    db, _ = clustered
    rows = list(csv.DictReader(io.StringIO(invoke(runner, "export", db, "--clustering", "bursts").output)))
    assert len(rows) == 5 and {r["cluster"] for r in rows} == {"1", "2"}
    assert set(rows[0]) == {"clustering", "cluster", "image_id", "path", "taken"}
    data = json.loads(invoke(runner, "export", db, "--clustering", "bursts", "--format", "json").output)
    assert [c["size"] for c in data["clusters"]] == [3, 2] and data["clustering"]["sim"] == 0.99
    missing = invoke(runner, "export", db, "--clustering", "nope", ok=False)
    assert missing.exit_code == 1 and "no clustering named 'nope' (saved: bursts)" in missing.output

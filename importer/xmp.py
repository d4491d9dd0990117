"""Cluster keywords merged into XMP sidecars, without losing anything already there.

Keywords are written where digiKam and Lightroom read them: the hierarchy in
``lr:hierarchicalSubject`` (``imagecluster|trips|cluster-0042``) and
``digiKam:TagsList`` (``imagecluster/trips/cluster-0042``), the leaf in
``dc:subject``. Every other element, attribute, namespace prefix, comment and
the ``xpacket`` wrapper are kept; only the keywords of the clustering being
written are replaced.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X = "adobe:ns:meta/"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
DIGIKAM = "http://www.digikam.org/ns/1.0/"
PREFIXES = {"x": X, "rdf": RDF, "dc": DC, "lr": LR, "digiKam": DIGIKAM}
# (property, container, separator) of each keyword field.
FIELDS = ((f"{{{LR}}}hierarchicalSubject", "Bag", "|"), (f"{{{DIGIKAM}}}TagsList", "Seq", "/"),
          (f"{{{DC}}}subject", "Bag", None))
PACKET_HEAD = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_TAIL = '\n<?xpacket end="w"?>\n'


class SidecarError(Exception):
    """A sidecar that is not XMP we can merge into; the message says which and why."""


def keyword(clustering: str, cluster: int) -> list[str]:
    return ["imagecluster", clustering, f"cluster-{cluster:04d}"]


def _namespaces(data: bytes) -> list[tuple[str, str]]:
    found = []
    for _, (prefix, uri) in ET.iterparse(io.BytesIO(data), events=("start-ns",)):
        found.append((prefix, uri))
    return found


def _parse(data: bytes) -> ET.ElementTree:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
    return ET.ElementTree(ET.fromstring(data, parser=parser))


def _description(root: ET.Element) -> ET.Element:
    rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f".//{{{RDF}}}RDF")
    if rdf is None:
        raise SidecarError("no rdf:RDF element")
    description = rdf.find(f"{{{RDF}}}Description")
    if description is None:
        description = ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    return description


def _items(description: ET.Element, prop: str, container: str) -> tuple[ET.Element, list[str]]:
    element = description.find(prop)
    if element is None:
        element = ET.SubElement(description, prop)
    box = next((b for b in (element.find(f"{{{RDF}}}{kind}") for kind in (container, "Bag", "Seq", "Alt"))
                if b is not None), None)
    if box is None:
        box = ET.SubElement(element, f"{{{RDF}}}{container}")
    return box, [li.text or "" for li in box.findall(f"{{{RDF}}}li")]


def merge(data: bytes | None, clustering: str, path: list[str] | None) -> tuple[bytes, list[str], list[str]]:
    """The sidecar with this clustering's keyword set to ``path`` (None: removed).

    Returns (new bytes, keywords added, keywords removed), hierarchical keywords
    written with '|'.
    """
    if data:
        try:
            namespaces = _namespaces(data)
            tree = _parse(data)
        except ET.ParseError as e:
            raise SidecarError(f"not well-formed XML ({e})")
        root = tree.getroot()
    else:
        namespaces = []
        root = ET.Element(f"{{{X}}}xmpmeta")
        ET.SubElement(ET.SubElement(root, f"{{{RDF}}}RDF"), f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    for prefix, uri in [*namespaces, *PREFIXES.items()]:
        if prefix:
            ET.register_namespace(prefix, uri)
    description = _description(root)
    ours = f"imagecluster|{clustering}|"
    added, removed = [], []
    old_leaves: set[str] = set()
    for prop, container, separator in FIELDS:
        box, values = _items(description, prop, container)
        if separator is None:  # dc:subject: leaves
            keep = [v for v in values if v not in old_leaves]
            wanted = [path[-1]] if path else []
        else:
            prefix = ours.replace("|", separator)
            mine = [v for v in values if v.startswith(prefix)]
            if separator == "|":
                removed += [v for v in mine if path is None or v != "|".join(path)]
            old_leaves |= {v.rsplit(separator, 1)[-1] for v in mine}
            keep = [v for v in values if not v.startswith(prefix)]
            wanted = [separator.join(path)] if path else []
            if separator == "|" and path and "|".join(path) not in values:
                added.append("|".join(path))
        for li in box.findall(f"{{{RDF}}}li"):
            box.remove(li)
        for value in keep + [w for w in wanted if w not in keep]:
            ET.SubElement(box, f"{{{RDF}}}li").text = value
        if not len(box):
            description.remove(description.find(prop))
    body = ET.tostring(root, encoding="unicode")
    had_packet = bool(data) and b"<?xpacket" in data
    text = (PACKET_HEAD + body + PACKET_TAIL) if (had_packet or not data) else body + "\n"
    return text.encode("utf-8"), added, removed


def sidecar_path(photo: str, style: str) -> str:
    """``appended``: photo.jpg.xmp (digiKam); ``replaced``: photo.xmp (Lightroom, Adobe)."""
    return photo + ".xmp" if style == "appended" else os.path.splitext(photo)[0] + ".xmp"

"""Cluster keywords merged into XMP sidecars, without losing anything already there.

Keywords are written where digiKam and Lightroom read them: the hierarchy in
``lr:hierarchicalSubject`` (``imagecluster|trips|cluster-0042``) and
``digiKam:TagsList`` (``imagecluster/trips/cluster-0042``), the leaf in
``dc:subject``. Every other element, attribute, namespace prefix, comment and
the ``xpacket`` wrapper are kept; only the keywords of the clustering being
written are replaced. lxml keeps each document's own prefixes (``ns0:``
included) without ElementTree's process-wide prefix registry, and its parser
is set never to resolve entities or reach the network.
"""

from __future__ import annotations

import os

from lxml import etree

from datasette_imagecluster.errors import ImageclusterError

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
X = "adobe:ns:meta/"
DC = "http://purl.org/dc/elements/1.1/"
LR = "http://ns.adobe.com/lightroom/1.0/"
DIGIKAM = "http://www.digikam.org/ns/1.0/"
XMP = "http://ns.adobe.com/xap/1.0/"
# Ours: which clustering wrote a keeper's rating, and the value it wrote, so a later export takes back a rating
# it wrote (and only one the user has not changed since) when the photo is no longer a keeper.
IMAGECLUSTER = "http://ns.datasette-imagecluster.org/1.0/"
RATED_BY, RATED = f"{{{IMAGECLUSTER}}}keeperRatingBy", f"{{{IMAGECLUSTER}}}keeperRating"
PREFIXES = {"x": X, "rdf": RDF, "dc": DC, "lr": LR, "digiKam": DIGIKAM, "xmp": XMP, "imagecluster": IMAGECLUSTER}
# (property, container, separator) of each keyword field.
FIELDS = (
    (f"{{{LR}}}hierarchicalSubject", "Bag", "|"),
    (f"{{{DIGIKAM}}}TagsList", "Seq", "/"),
    (f"{{{DC}}}subject", "Bag", None),
)
PACKET_HEAD = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
PACKET_TAIL = '\n<?xpacket end="w"?>\n'


class SidecarError(ImageclusterError):
    """A sidecar that is not XMP we can merge into; the message says which and why."""


def keyword(clustering: str, cluster: int) -> list[str]:
    return ["imagecluster", clustering, f"cluster-{cluster:04d}"]


def keeper_keyword(clustering: str) -> list[str]:
    """What marks a photo its cluster's or its burst's keeper: ``imagecluster|NAME|keeper``, a keyword digiKam
    and Lightroom filter on."""
    return ["imagecluster", clustering, "keeper"]


# Entities declared inside the sidecar are expanded (the DOCTYPE is not written back, so a reference kept as such
# would leave the file malformed); external ones never are, and libxml2 refuses exponential expansion.
_PARSER = etree.XMLParser(remove_comments=False, remove_pis=False, resolve_entities="internal", no_network=True)


def _element(parent: etree._Element, tag: str, attributes: dict | None = None) -> etree._Element:
    """A child; a namespace not yet in scope is declared on it with its usual prefix."""
    uri = tag[1:].split("}")[0]
    declared = uri in parent.nsmap.values()
    nsmap = None if declared else {p: u for p, u in PREFIXES.items() if u == uri} or None
    return etree.SubElement(parent, tag, attributes or {}, nsmap=nsmap)


def _description(root: etree._Element) -> etree._Element:
    rdf = root if root.tag == f"{{{RDF}}}RDF" else root.find(f".//{{{RDF}}}RDF")
    if rdf is None:
        raise SidecarError("no rdf:RDF element")
    description = rdf.find(f"{{{RDF}}}Description")
    if description is None:
        description = _element(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    return description


def _items(description: etree._Element, prop: str, container: str) -> tuple[etree._Element, list[str]]:
    element = description.find(prop)
    if element is None:
        element = _element(description, prop)
    box = next(
        (b for b in (element.find(f"{{{RDF}}}{kind}") for kind in (container, "Bag", "Seq", "Alt")) if b is not None),
        None,
    )
    if box is None:
        box = _element(element, f"{{{RDF}}}{container}")
    return box, [li.text or "" for li in box.findall(f"{{{RDF}}}li")]


def merge(
    data: bytes | None, clustering: str, paths: list[list[str]], rating: int | None = None, keeper: bool = False
) -> tuple[bytes, list[str], list[str]]:
    """The sidecar with this clustering's keywords set to ``paths`` (none: removed): its cluster, and
    ``keeper`` where the photo is one; for a keeper, ``rating`` written as xmp:Rating only where the sidecar has
    none. A photo no longer a keeper loses the rating this clustering wrote, unless the user changed it since.

    Returns (new bytes, keywords added, keywords removed), hierarchical keywords
    written with '|'.
    """
    if data:
        try:
            root = etree.fromstring(data, parser=_PARSER)
        except etree.XMLSyntaxError as e:
            raise SidecarError(f"not well-formed XML ({e})")
    else:
        root = etree.Element(f"{{{X}}}xmpmeta", nsmap=PREFIXES)
        etree.SubElement(etree.SubElement(root, f"{{{RDF}}}RDF"), f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    description = _description(root)
    ours = f"imagecluster|{clustering}|"
    added, removed = [], []
    old_leaves: set[str] = set()
    for prop, container, separator in FIELDS:
        box, values = _items(description, prop, container)
        if separator is None:  # dc:subject: leaves
            keep = [v for v in values if v not in old_leaves]
            wanted = [path[-1] for path in paths]
        else:
            prefix = ours.replace("|", separator)
            mine = [v for v in values if v.startswith(prefix)]
            wanted = [separator.join(path) for path in paths]
            if separator == "|":
                removed += [v for v in mine if v not in wanted]
                added += [w for w in wanted if w not in values]
            old_leaves |= {v.rsplit(separator, 1)[-1] for v in mine}
            keep = [v for v in values if not v.startswith(prefix)]
        for li in box.findall(f"{{{RDF}}}li"):
            box.remove(li)
        for value in keep + [w for w in wanted if w not in keep]:
            etree.SubElement(box, f"{{{RDF}}}li").text = value
        if not len(box):
            description.remove(description.find(prop))
    if not keeper:
        removed += _take_back_rating(root, clustering)
    elif rating is not None and not _rated(root):
        _element(description, f"{{{XMP}}}Rating").text = str(rating)
        _element(description, RATED_BY).text = clustering
        _element(description, RATED).text = str(rating)
        added.append(f"xmp:Rating {rating}")
    body = etree.tostring(root, encoding="unicode")
    had_packet = bool(data) and b"<?xpacket" in data
    text = (PACKET_HEAD + body + PACKET_TAIL) if (had_packet or not data) else body + "\n"
    if data and data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml"):  # kept: readers need it
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + text
    return text.encode("utf-8"), added, removed


def _rated(root: etree._Element) -> bool:
    """Whether any description already gives a rating (an attribute or an element): the user's, never replaced."""
    return any(True for _ in _ratings(root))


def _ratings(root: etree._Element):
    """(description, value, element or None where it is an attribute) of each xmp:Rating."""
    for description in root.iter(f"{{{RDF}}}Description"):
        if f"{{{XMP}}}Rating" in description.attrib:
            yield description, description.get(f"{{{XMP}}}Rating"), None
        for element in description.findall(f"{{{XMP}}}Rating"):
            yield description, element.text, element


def _take_back_rating(root: etree._Element, clustering: str) -> list[str]:
    """Remove the keeper rating ``clustering`` wrote (and its record), where the rating is still the one it wrote;
    a rating the user changed since stays, without the record. What was removed, in words."""
    records = [
        (description, by, description.find(RATED))
        for description in root.iter(f"{{{RDF}}}Description")
        if (by := description.find(RATED_BY)) is not None and (by.text or "") == clustering
    ]
    removed = []
    for description, by, value in records:
        written = (value.text or "").strip() if value is not None else None
        for holder, current, element in list(_ratings(root)):
            if written is not None and (current or "").strip() == written:
                if element is None:
                    del holder.attrib[f"{{{XMP}}}Rating"]
                else:
                    holder.remove(element)
                removed.append(f"xmp:Rating {written}")
        description.remove(by)
        if value is not None:
            description.remove(value)
        if not removed:  # the user's rating now: only the record goes
            removed.append("the record of a keeper rating")
    return removed


def sidecar_path(photo: str, style: str) -> str:
    """``appended``: photo.jpg.xmp (digiKam); ``replaced``: photo.xmp (Lightroom, Adobe)."""
    return photo + ".xmp" if style == "appended" else os.path.splitext(photo)[0] + ".xmp"

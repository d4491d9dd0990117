"""The gallery: where a clustering becomes the cluster page's cards, the one place a card's fields are chosen.

Each card's photos are read here, for the clusters on the page only
(:data:`CARD_COLUMNS` of table ``images``): a field added to the cards is a
column here and a line in ``imagecluster.html``; the JSON of the CLI and of
``/-/cluster.json`` (:meth:`..api.Clustering.json`) stays as it is.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, quote, urlencode

from ..api import Clustering, Selection
from ..engine.parameters import format_duration
from ..errors import NotFoundError
from ..library import keepers, saved
from ..library.connections import has_tables
from ..library.schema import CLUSTER_MEMBERS, CLUSTERINGS, IMAGES, KEEPERS, VERDICTS
from .dendrogram import Dendrogram
from .display import date_span, file_name, photo_date
from .form import Form, short_duration
from .permissions import WRITE_API, can_execute_sql, can_view, can_write_rows
from .urls import cluster_url, preview_url, route, thumbnail_url

# What a card shows of a photo, besides its image (its size and orientation give the image's shape before it loads).
CARD_COLUMNS = ("path", "taken", "camera_make", "camera_model", "width", "height", "orientation")


def read_photos(conn, image_ids: list[int]) -> dict[int, dict]:
    """``{id: {column: value}}`` of :data:`CARD_COLUMNS` for these photos, in one statement (the ids as one
    JSON parameter, however many). A photo deleted since it was clustered is left out; its card shows less."""
    columns = ", ".join(f"i.[{c}]" for c in CARD_COLUMNS)
    rows = conn.execute(
        f"select i.id, {columns} from {IMAGES} i where i.id in (select value from json_each(?))",
        (json.dumps(image_ids),),
    )
    return {row[0]: dict(zip(CARD_COLUMNS, row[1:])) for row in rows}


def _camera(make: str | None, model: str | None) -> str | None:
    """``Canon EOS 5D`` from make ``Canon`` and model ``Canon EOS 5D`` (most models repeat the make)."""
    if not model:
        return make or None
    return model if not make or model.lower().startswith(make.lower().split()[0]) else f"{make} {model}"


def _keeper_reason(kept: keepers.ClusterKeepers, image_id: int) -> str | None:
    """Why a photo is kept, where it is the cluster's or a group's keeper."""
    if image_id == kept.keeper:
        return "your choice" if kept.chosen else kept.reason
    return next((g.reason for g in kept.groups if g.keeper == image_id), None)


def _why(kept: keepers.ClusterKeepers, photos: dict[int, dict]) -> str | None:
    """What holds a cluster together, in a line: content against capture time, and its weakest link."""
    if kept.why is None:
        return None
    a, b = (file_name(photos.get(i, {}).get("path"), i) for i in kept.why_pair)
    apart = f", {format_duration(kept.why.seconds)} apart" if kept.why.seconds is not None else ""
    return (
        f"Held together by content {kept.why.content_share:.0%}, capture time {1 - kept.why.content_share:.0%}; "
        f"its weakest link: {a} and {b}{apart}."
    )


def photo_card(datasette, database: str, image_id: int, row: dict, cluster: int | None = None) -> dict:
    """One photo on a card, from its :func:`read_photos` row (empty for a photo deleted since)."""
    name, date = file_name(row.get("path"), image_id), photo_date(row.get("taken"))
    camera = _camera(row.get("camera_make"), row.get("camera_model"))
    width, height = row.get("width"), row.get("height")
    if row.get("orientation") in (5, 6, 7, 8):  # EXIF's quarter turns: shown upright, so the other way round
        width, height = height, width
    # What the photo is, for a screen reader: its name, when, and where it sits.
    alt = ", ".join(part for part in (name, date, f"cluster {cluster}" if cluster else None) if part)
    return {
        "id": image_id,
        "name": name,
        "path": row.get("path") or name,
        "date": date,
        "camera": camera,
        "alt": alt,
        "width": width if isinstance(width, int) and width > 0 else 4,
        "height": height if isinstance(height, int) and height > 0 else 3,
        "thumbnail": thumbnail_url(datasette, database, image_id),
        "preview": preview_url(datasette, database, image_id),
        "url": datasette.urls.row(database, IMAGES, str(image_id)),
    }


async def gallery_context(datasette, request, db, form: Form, clustering: Clustering, settings: dict) -> dict:
    selection, result = clustering.selection, clustering.result
    library, sets = selection.library, selection.sets
    pages = max(1, -(-len(result.clusters) // form.page_size))
    page = min(form.page, pages)
    shown = clustering.clusters[(page - 1) * form.page_size : page * form.page_size]
    per_card = int(settings["thumbnails_per_cluster"])
    photos = await db.execute_fn(lambda conn: read_photos(conn, [i for members in shown for i in members]))
    can_sql = await can_execute_sql(datasette, request.actor, db.name)
    table_url = datasette.urls.table(db.name, IMAGES)
    shaping = _shaping_verdicts(selection)
    dendrogram = Dendrogram.of(clustering.tree, library.ids)
    named = {i for members in shown for _, photos in _shaping_on(shaping, members) for i in photos}
    named = (named | {leaf.image_id for leaf in dendrogram.leaves}) - set(photos)
    if named:  # the other photo of a "these two differ" that shaped a card on this page, the dendrogram's leaves
        photos.update(await db.execute_fn(lambda conn: read_photos(conn, sorted(named))))
    first = (page - 1) * form.page_size + 1
    found = await db.execute_fn(
        lambda conn: keepers.analyse(
            conn, selection.library, selection.params, selection.scale, list(enumerate(shown, first))
        )
    )
    can_verdict = await can_write_rows(datasette, request.actor, db.name, VERDICTS)
    can_keep = await can_write_rows(datasette, request.actor, db.name, KEEPERS)
    can_save = await can_write_rows(datasette, request.actor, db.name, CLUSTERINGS)
    cards = []
    for (number, members), kept in zip(enumerate(shown, start=first), found):
        taken = [photos[i]["taken"] for i in members if photos.get(i, {}).get("taken")]
        id_list = ",".join(map(str, members))
        roles = keepers.roles([kept])
        images = [photo_card(datasette, db.name, i, photos.get(i, {}), number) for i in members[:per_card]]
        for image in images:
            image["role"], image["tier"] = roles[image["id"]]
            image["reason"] = _keeper_reason(kept, image["id"])
        cards.append(
            {
                "number": number,
                "size": len(members),
                "span": date_span(min(taken), max(taken)) if taken else None,
                "images": images,
                "more": max(0, len(members) - per_card),
                "tiers": [tier for tier, groups in kept.tiers.items() if groups],
                "why": _why(kept, photos),
                "verdicts": [
                    {
                        "text": DESCRIBED_ON_CARD[kind],
                        "photos": [photo_card(datasette, db.name, i, photos.get(i, {})) for i in ids],
                    }
                    for kind, ids in _shaping_on(shaping, members)
                ],
                "member_ids": id_list,
                "table_url": f"{table_url}?{urlencode({'id__in': id_list})}",
                "sql_url": (
                    datasette.urls.database(db.name)
                    + "?"
                    + urlencode({"sql": f"select * from {IMAGES} where id in ({id_list}) order by timestamp"})
                )
                if can_sql
                else None,
            }
        )
    agreement = clustering.agreement()
    saved_list = await _saved_clusterings(datasette, request, db)
    base = datasette.urls.path(f"/{route(datasette, db.name)}/-/cluster")
    p = form.params
    return {
        "values": {
            "sim": p.sim,
            "alpha": p.alpha,
            "method": p.method,
            "metric": p.metric,
            "min_csize": p.min_csize,
            "pca": "" if p.pca is None else p.pca,
            "tau": short_duration(p.tau),
            "distance": p.distance,
            "sql": form.sql,
        },
        "can_sql": can_sql,
        "verdict_url": base + "/verdict" if can_verdict and db.is_mutable else None,
        "undo_url": base + "/undo" if can_verdict and db.is_mutable else None,
        "keep_url": base + "/keep" if can_keep and can_verdict and db.is_mutable else None,
        "save_url": base + "/save" if can_save and db.is_mutable else None,
        "why_read_only": _why_read_only(db, can_verdict, can_save),
        "saved": saved_list,
        "saved_now": await _saved_now(request, db, base) if saved_list else None,  # only for who may see them
        "save_fields": parse_qsl(form.query(page=None)),  # exactly what the page shows, tuned defaults resolved
        "page_url": request.full_path,
        "sets": sets if len(sets) > 1 else [],
        "chosen": library.fingerprint_set,
        "stats": result.stats(),
        "n_images": result.n_images,
        "n_clustered": result.n_clustered,
        "n_clusters": len(result.clusters),
        "cards": cards,
        "page": page,
        "pages": pages,
        "prev_url": f"{base}?{form.query(page=page - 1)}" if page > 1 else None,
        "next_url": f"{base}?{form.query(page=page + 1)}" if page < pages else None,
        "json_url": f"{base}.json?{form.query(page=None)}",
        "dendrogram": dendrogram.svg(
            clustering.tree,
            p.sim,
            {
                leaf.image_id: (
                    file_name(photos.get(leaf.image_id, {}).get("path"), leaf.image_id),
                    datasette.urls.row(db.name, IMAGES, str(leaf.image_id)),
                )
                for leaf in dendrogram.leaves
            },
        ),
        "random_weights": library.fingerprint_set.weights.startswith("random-"),
        "params_from": selection.chosen.describe(),
        "agreement": None
        if agreement is None
        else {
            "labels": agreement[0],
            "precision": agreement[1].precision,
            "recall": agreement[1].recall,
            "f1": agreement[1].f1,
        },
    }


def _shaping_verdicts(selection: Selection) -> list[tuple[str, tuple[int, ...]]]:
    """The verdicts on this library as ("same", ids) and ("different", (a, b)) in image ids."""
    ids = selection.library.ids
    same = [("same", tuple(int(ids[p]) for p in g)) for g in selection.constraints.same]
    return same + [("different", (int(ids[a]), int(ids[b]))) for a, b in selection.constraints.different]


def version_card(version: saved.Saved) -> dict:
    """A saved version as the pages show it: its number, when, and with which settings."""
    p = version.params
    labels = (("sim", "sim"), ("alpha", "alpha"), ("method", "method"), ("smallest", "min_csize"))
    return {
        "version": version.version,
        "date": photo_date(version.created_at) or version.created_at,
        "settings": ", ".join(f"{label} {p[key]}" for label, key in labels if key in p),
        "clusters": version.n_clusters,
        "photos": version.n_images,
    }


async def _saved_now(request, db, base: str) -> dict | None:
    """What the save just stored (named by the URL the save returned to, read from the database): its name,
    version and settings, with a link to what changed since the version before."""
    name, version = request.args.get("saved"), request.args.get("version") or ""
    if not name or not version.isdigit():
        return None
    try:
        found = await db.execute_fn(lambda conn: saved.load_version(conn, name, int(version)))
    except NotFoundError:
        return None
    card = version_card(found)
    return {
        "text": f"Saved as clustering {name!r}, version {card['version']}: {card['clusters']} clusters of "
        f"{card['photos']} photos at {card['settings']}.",
        "changes_url": f"{base}/changes/{quote(name)}" if card["version"] > 1 else None,
    }


def _why_read_only(db, can_verdict: bool, can_save: bool) -> str | None:
    """One line on why the page can't record verdicts or save, and how to allow it; None when it can."""
    if not db.is_mutable:
        return (
            "This database is opened immutable (-i), so verdicts and saved clusterings can't be written here: "
            "open it with 'datasette photos.db' (no -i), or use 'imagecluster verdict' on a copy you can write."
        )
    if can_verdict and can_save:
        return None
    if WRITE_API:
        how = "for yourself: 'datasette photos.db --root', then open the link it prints"
    else:
        how = "Datasette 0.65 has no write API, so a permission plugin must grant them: see the README, Permissions"
    return (
        "Verdicts and saving need permission to write to this database: sign in as an actor allowed insert-row "
        f"and delete-row on its verdicts and clusterings tables ({how})."
    )


async def _saved_clusterings(datasette, request, db) -> list[dict]:
    """The saved clusterings, each with its changes page once it has two versions (if the actor may see them)."""
    if not await can_view(datasette, request.actor, db.name, (CLUSTERINGS, CLUSTER_MEMBERS)):
        return []

    def read(conn):
        if not has_tables(conn, CLUSTERINGS):
            return []
        return [(name, saved.versions(conn, name)) for name in saved.names(conn)]

    base = cluster_url(datasette, db.name)
    return [
        {
            "name": name,
            "versions": len(versions),
            "url": f"{base}/changes/{quote(name)}" if len(versions) > 1 else None,
        }
        for name, versions in await db.execute_fn(read)
    ]


DESCRIBED_ON_CARD = {"same": "you said these belong together", "different": "you said these two differ"}


def _shaping_on(shaping: list[tuple[str, tuple[int, ...]]], members: list[int]) -> list[tuple[str, tuple[int, ...]]]:
    """What shaped one cluster: its ``same`` groups, and ``different`` verdicts between its photos and others."""
    inside = set(members)
    return [(kind, photos) for kind, photos in shaping if inside.intersection(photos)]

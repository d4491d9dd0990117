"""The gallery: where a clustering becomes the cluster page's cards, the one place a card's fields are chosen.

Each card's photos are read here, for the clusters on the page only
(:data:`CARD_COLUMNS` of table ``images``): a field added to the cards is a
column here and a line in ``imagecluster.html``; the JSON of the CLI and of
``/-/cluster.json`` (:meth:`..api.Clustering.json`) stays as it is.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

from ..api import Clustering, Selection
from ..library.schema import CLUSTERINGS, IMAGES, VERDICTS
from .dendrogram import dendrogram_svg
from .form import Form, short_duration
from .permissions import can_execute_sql, can_write_rows
from .urls import route, thumbnail_url

CARD_COLUMNS = ("path", "taken", "camera_make", "camera_model")  # what a card shows of a photo, besides its image


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


def photo_card(datasette, database: str, image_id: int, row: dict) -> dict:
    """One photo on a card, from its :func:`read_photos` row (empty for a photo deleted since)."""
    return {
        "id": image_id,
        "name": (row.get("path") or f"photo {image_id}").rsplit("/", 1)[-1],
        "taken": row.get("taken"),
        "camera": _camera(row.get("camera_make"), row.get("camera_model")),
        "thumbnail": thumbnail_url(datasette, database, image_id),
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
    can_verdict = await can_write_rows(datasette, request.actor, db.name, VERDICTS)
    can_save = await can_write_rows(datasette, request.actor, db.name, CLUSTERINGS)
    cards = []
    for number, members in enumerate(shown, start=(page - 1) * form.page_size + 1):
        member_ids = members
        taken = [photos[i]["taken"] for i in member_ids if photos.get(i, {}).get("taken")]
        id_list = ",".join(map(str, member_ids))
        cards.append(
            {
                "number": number,
                "size": len(member_ids),
                "first": min(taken) if taken else None,
                "last": max(taken) if taken else None,
                "images": [photo_card(datasette, db.name, i, photos.get(i, {})) for i in member_ids[:per_card]],
                "more": max(0, len(member_ids) - per_card),
                "verdicts": _verdicts_on(shaping, member_ids),
                "member_ids": ",".join(map(str, member_ids)),
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
        "verdicts_immutable": can_verdict and not db.is_mutable,
        "save_url": base + "/save" if can_save and db.is_mutable else None,
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
        "dendrogram": dendrogram_svg(clustering.tree, p.sim),
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


def _verdicts_on(shaping: list[tuple[str, tuple[int, ...]]], members: list[int]) -> list[str]:
    """What shaped one cluster: its ``same`` groups, and ``different`` verdicts between its photos and others."""
    inside = set(members)
    return [f"{kind}: photos {', '.join(map(str, photos))}" for kind, photos in shaping if inside.intersection(photos)]

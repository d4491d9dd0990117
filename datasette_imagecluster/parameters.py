"""Where a clustering's parameters come from: one rule for the CLI, the page and the SQL functions.

In order: parameters given explicitly (options, URL, function arguments),
then the plugin's configuration, then the parameters ``imagecluster tune
--save`` stored for the fingerprint set (table ``tuned_params``), then the
shipped defaults (:data:`SHIPPED`); a metric other than euclidean
given without a method gets ``average`` where the default method (ward) is
defined for euclidean distances only. The answer says which won,
so the page can tell the user, e.g. "tuned on 41 labelled pairs: precision
0.86, recall 0.79".
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, fields

from .clustering import EUCLIDEAN_ONLY_METHODS, Params
from .fingerprints import FingerprintSet
from .schema import TUNED_PARAMS, table_exists

NAMES = tuple(f.name for f in fields(Params))
# The shipped defaults: the best mean pairwise F1 over the real sets with pretrained features, as
# measured by benchmarks/quality.py (docs/quality.md). imagecluster's own are average, alpha 0.3, sim 0.5.
SHIPPED = Params(sim=0.55, alpha=0.4, method="ward")
# The method a non-euclidean metric gets when none is given and the default is euclidean only.
FALLBACK_METHOD = "average"


@dataclass(frozen=True)
class Chosen:
    params: Params
    origin: str  # "given", "configured", "tuned" or "default": where the parameters not given came from
    tuned: dict | None  # the tuned_params row, when the database has one for this set

    def describe(self) -> str:
        if self.origin == "tuned" and self.tuned:
            t = self.tuned
            return (
                f"tuned on {t['labels']}: precision {t['precision']:.2f}, recall {t['recall']:.2f} "
                f"(cross-validated F1 {t['cv_f1']:.2f})"
            )
        return {
            "given": "as given",
            "configured": "from the plugin's configuration",
            "default": "the shipped defaults (run 'imagecluster tune' to fit them to your labels)",
        }.get(self.origin, self.origin)


def tuned(conn: sqlite3.Connection, fingerprint_set: FingerprintSet) -> dict | None:
    """The parameters tuned for this fingerprint set, or None."""
    if not table_exists(conn, TUNED_PARAMS):
        return None
    cursor = conn.execute(
        f"select * from {TUNED_PARAMS} where model = ? and layer = ? and weights = ?",
        (fingerprint_set.model, fingerprint_set.layer, fingerprint_set.weights),
    )
    row = cursor.fetchone()
    return dict(zip([c[0] for c in cursor.description], row)) if row else None


def choose_params(given: dict, configured: dict, tuned_row: dict | None) -> Chosen:
    """Parameters from the first place that has each one; ClusterError if a value is invalid.

    A tuned set of parameters is taken whole (they were chosen together), for
    every parameter neither given nor configured.
    """
    given = {k: v for k, v in given.items() if k in NAMES and v is not None and v != ""}
    configured = {k: v for k, v in configured.items() if k in NAMES and v is not None and v != ""}
    values = {**SHIPPED.as_dict(), **configured}
    origin = "configured" if configured else "default"
    if tuned_row is not None and set(NAMES) - set(given) - set(configured):
        values = {**SHIPPED.as_dict(), **{k: tuned_row[k] for k in NAMES}, **configured}
        origin = "tuned"
    values.update(given)
    if not set(NAMES) - set(given):
        origin = "given"
    if (
        "method" not in given
        and "method" not in configured
        and values.get("metric", "euclidean") != "euclidean"
        and values["method"] in EUCLIDEAN_ONLY_METHODS
    ):
        values["method"] = FALLBACK_METHOD  # ward is euclidean only: a metric chosen alone picks a method too
    return Chosen(Params(**values), origin, tuned_row)

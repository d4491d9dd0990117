"""What a clustering's parameters are (:class:`Params`, validated) and where they come from.

Given, then configured, then tuned, then the shipped defaults (:func:`choose_params`): one rule for the
CLI, the page and the SQL functions. No scipy, so the command starts fast.
In depth: docs/engine.md, "Where parameters come from".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

from ..errors import ClusterError

METHODS = ("single", "complete", "average", "weighted", "centroid", "median", "ward")
EUCLIDEAN_ONLY_METHODS = frozenset({"centroid", "median", "ward"})
# How distances are put on one scale (docs/quality.md, "Distances"):
# "absolute": content divided by the typical distance between unrelated photos of the fingerprint set, capture
#   time as min(|Δt| / tau, 1), mixed by alpha and cut at 1 - sim: no photo's addition moves another's distances;
# "imagecluster": each term divided by its library-wide maximum and cut at max(d)·(1 - sim), as imagecluster does.
DISTANCES = ("absolute", "imagecluster")
METRICS = (
    "euclidean",
    "sqeuclidean",
    "cityblock",
    "cosine",
    "correlation",
    "chebyshev",
    "canberra",
    "braycurtis",
)


def parse_unit_interval(name: str, value: object) -> float:
    """A number in [0, 1] from a float or a string, or a ClusterError."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ClusterError(f"{name} must be a number between 0 and 1, not {value!r}")
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ClusterError(f"{name} must be between 0 and 1, not {value!r}")
    return number


def parse_min_csize(value: object) -> int:
    """A cluster size of at least 1 from an int or a string, or a ClusterError."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise ClusterError(f"min_csize must be a whole number of at least 1, not {value!r}")
    if number < 1:
        raise ClusterError(f"min_csize must be at least 1, not {number}")
    return number


_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
}
MAX_TAU = 100 * 365.25 * 86400.0  # a century: beyond it every photo of a life is "close in time"


def parse_duration(name: str, value: object) -> float:
    """A duration in seconds from a number (seconds) or text such as ``90 s``, ``15 min``, ``1 h 30 min``, ``2 d``;
    more than 0 and at most a century, or a ClusterError."""
    text = str(value).strip().lower()
    try:
        seconds = float(text)
    except ValueError:
        parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)", text)
        if not parts or re.sub(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)", "", text).strip():
            raise ClusterError(f"{name} must be a duration such as 15 min, 1 h or 2 d, not {value!r}")
        seconds = 0.0
        for number, unit in parts:
            unit = unit[:-1] if unit.endswith("s") and unit[:-1] in _UNITS else unit
            if unit not in _UNITS:
                raise ClusterError(f"{name}: unknown unit {unit!r} in {value!r} (use s, min, h, d or w)")
            seconds += float(number) * _UNITS[unit]
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_TAU:
        raise ClusterError(f"{name} must be a duration more than 0 and at most 100 years, not {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as a photographer says it: ``45 s``, ``15 min``, ``1 h 30 min``, ``2 d``."""
    if seconds < 60:
        return f"{seconds:g} s"
    parts, rest = [], round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size} {unit}")
            rest %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def describe(params: dict) -> str:
    """One line of a clustering's parameters (``Params.as_dict()`` or a saved clustering's): ``sim 0.48, alpha
    0.5, tau 1 h, ward/euclidean, min_csize 2``, naming imagecluster's distance where it is that."""
    absolute = params.get("distance", "imagecluster") == "absolute"
    return (
        ("" if absolute else "imagecluster's distance, ")
        + f"sim {params['sim']}, alpha {params['alpha']}, "
        + (f"tau {format_duration(params['tau'])}, " if absolute and params.get("tau") else "")
        + f"{params['method']}/{params['metric']}, min_csize {params['min_csize']}"
        + (f", pca {params['pca']}" if params.get("pca") is not None else "")
    )


def parse_pca(value: object) -> int | float | None:
    """PCA setting: None (off), a component count (int >= 1) or a variance fraction in (0, 1)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "off")):
        return None
    text = str(value).strip()
    try:
        if text.isdigit():
            count = int(text)
            if count < 1:
                raise ValueError
            return count
        fraction = float(text)
    except ValueError:
        raise ClusterError(
            f"pca must be a number of components (e.g. 50) or a variance fraction "
            f"between 0 and 1 (e.g. 0.95), not {value!r}"
        )
    if not math.isfinite(fraction) or not 0.0 < fraction < 1.0:
        raise ClusterError(f"a pca variance fraction must be between 0 and 1 (exclusive), not {value!r}")
    return fraction


@dataclass(frozen=True)
class Params:
    """Every parameter of one clustering, validated on construction.

    The field defaults are imagecluster's own (its distance, and ``tau`` unused by it), for code that uses
    this core as imagecluster; the product's defaults (what the CLI, the page and the SQL functions use) are
    :data:`.parameters.SHIPPED`. ``tau`` is in seconds: photos that far apart or more are unrelated in time.
    """

    sim: float = 0.5
    alpha: float = 0.3
    method: str = "average"
    metric: str = "euclidean"
    min_csize: int = 2
    pca: int | float | None = None
    distance: str = "imagecluster"
    tau: float = 3600.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sim", parse_unit_interval("sim", self.sim))
        object.__setattr__(self, "alpha", parse_unit_interval("alpha", self.alpha))
        object.__setattr__(self, "min_csize", parse_min_csize(self.min_csize))
        object.__setattr__(self, "pca", parse_pca(self.pca))
        object.__setattr__(self, "tau", parse_duration("tau", self.tau))
        if self.distance not in DISTANCES:
            raise ClusterError(f"unknown distance {self.distance!r}: choose one of {', '.join(DISTANCES)}")
        if self.method not in METHODS:
            raise ClusterError(f"unknown method {self.method!r}: choose one of {', '.join(METHODS)}")
        if self.metric not in METRICS:
            raise ClusterError(f"unknown metric {self.metric!r}: choose one of {', '.join(METRICS)}")
        if self.method in EUCLIDEAN_ONLY_METHODS and self.metric != "euclidean":
            raise ClusterError(f"method {self.method!r} is only defined for the euclidean metric, not {self.metric!r}")

    def as_dict(self) -> dict:
        return {
            "sim": self.sim,
            "alpha": self.alpha,
            "method": self.method,
            "metric": self.metric,
            "min_csize": self.min_csize,
            "pca": self.pca,
            "distance": self.distance,
            "tau": self.tau,
        }

    @property
    def absolute(self) -> bool:
        """Distances on absolute scales (the product's), not divided by the library's maxima."""
        return self.distance == "absolute"


NAMES = tuple(f.name for f in fields(Params))
# The shipped defaults: the best mean pairwise F1 over the real sets with pretrained features, as
# measured by benchmarks/quality.py (docs/quality.md). imagecluster's own are average, alpha 0.3, sim 0.5.
SHIPPED = Params(sim=0.48, alpha=0.5, method="ward", distance="absolute", tau=3600.0)
# Each distance's defaults, for what is neither given, configured nor tuned (``distance=imagecluster`` alone
# gets the best of imagecluster's distance, as shipped before distances had a choice).
DEFAULTS = {"absolute": SHIPPED, "imagecluster": Params(sim=0.55, alpha=0.4, method="ward", distance="imagecluster")}
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


def choose_params(given: dict, configured: dict, tuned_row: dict | None) -> Chosen:
    """Parameters from the first place that has each one; ClusterError if a value is invalid.

    A tuned set of parameters is taken whole (they were chosen together), for
    every parameter neither given nor configured, unless another distance was
    asked for (a sim tuned for one distance means nothing on the other). What is
    left comes from the shipped defaults of the distance in effect (:data:`DEFAULTS`).
    """
    given = {k: v for k, v in given.items() if k in NAMES and v is not None and v != ""}
    configured = {k: v for k, v in configured.items() if k in NAMES and v is not None and v != ""}
    asked = given.get("distance", configured.get("distance"))
    tuned_values = {}
    if tuned_row is not None and set(NAMES) - set(given) - set(configured):
        # Rows tuned before distances had a choice were tuned on imagecluster's.
        tuned_values = {k: tuned_row[k] for k in NAMES if tuned_row.get(k) is not None}
        tuned_values.setdefault("distance", "imagecluster")
        if asked is not None and asked != tuned_values["distance"]:
            tuned_values = {}
    distance = asked or tuned_values.get("distance") or SHIPPED.distance
    if distance not in DEFAULTS:
        raise ClusterError(f"unknown distance {distance!r}: choose one of {', '.join(DISTANCES)}")
    values = {**DEFAULTS[distance].as_dict(), **tuned_values, **configured, **given}
    origin = "tuned" if tuned_values else "configured" if configured else "default"
    if not set(NAMES) - set(given):
        origin = "given"
    if (
        "method" not in given
        and "method" not in configured
        and values.get("metric", "euclidean") != "euclidean"
        and values["method"] in EUCLIDEAN_ONLY_METHODS
    ):
        values["method"] = FALLBACK_METHOD  # ward is euclidean only: a metric chosen alone picks a method too
    return Chosen(Params(**values), origin, tuned_row if tuned_values else None)

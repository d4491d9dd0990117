"""The cluster page's request parameters as validated values (never SQL), and back into a URL's query."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from datasette.utils.asgi import BadRequest

from ..api import NAMES as PARAMETER_NAMES
from ..api import Params, choose_params, format_duration
from ..errors import ClusterError
from .config import MAX_PAGE_SIZE


def short_duration(seconds: float) -> str:
    """tau as the page's field and URLs show it: ``1h``, ``15min``, ``1h30min``."""
    return format_duration(seconds).replace(" ", "")


def whole_number(name: str, value, lo: int, hi: int) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, not {value!r}")
    if not lo <= number <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return number


@dataclass
class Form:
    given: dict  # clustering parameters in the URL
    model: str | None
    layer: str | None
    weights: str | None
    sql: str
    page: int
    page_size: int
    params: Params | None = None  # once the database's tuned parameters are read

    def query(self, **changes) -> str:
        values = {
            "sim": self.params.sim,
            "alpha": self.params.alpha,
            "method": self.params.method,
            "metric": self.params.metric,
            "min_csize": self.params.min_csize,
            "pca": self.params.pca,
            "tau": short_duration(self.params.tau),
            "distance": self.params.distance,
            "model": self.model,
            "layer": self.layer,
            "weights": self.weights,
            "sql": self.sql or None,
            "page": self.page,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v is not None and v != ""})


def parse_form(args, settings: dict) -> Form:
    """Request arguments (or the configured defaults) as validated values."""

    def arg(name):
        value = args.get(name)
        return settings.get(name) if value is None or value == "" else value

    given = {name: args.get(name) for name in PARAMETER_NAMES if args.get(name) not in (None, "")}
    try:
        choose_params(given, settings, None)  # every value given is valid before anything is read
    except ClusterError as e:
        raise BadRequest(str(e))
    chosen = {name: args.get(name) or settings.get(name) for name in ("model", "layer", "weights")}
    if args.get("set"):  # the page's fingerprint-set menu: "model|layer|weights"
        parts = args["set"].split("|")
        if len(parts) != 3:
            raise BadRequest("set must be model|layer|weights")
        chosen = dict(zip(("model", "layer", "weights"), parts))
    return Form(
        given=given,
        **chosen,
        sql=(args.get("sql") or "").strip(),
        page=whole_number("page", args.get("page") or 1, 1, 10**9),
        page_size=whole_number("page_size", arg("page_size"), 1, MAX_PAGE_SIZE),
    )

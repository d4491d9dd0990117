"""The rooms depend one way only: engine <- library <- api <- web, and the importer on api, library and errors.

Two checks, so the layering stays true: every module's own imports (read
from its source, imports inside functions included), and what importing each
layer loads into a fresh interpreter (imports of imports included).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "datasette_imagecluster"
STDLIB = frozenset(sys.stdlib_module_names)
DEEP_LEARNING = ("tensorflow", "keras", "torch", "efficientnet_lite_pytorch", "onnxruntime", "openvino")

# What each layer's modules may import: standard library modules (but those named), these packages, and the
# plugin package's modules under these prefixes.
ALLOWED = {
    "engine": {
        "packages": {"numpy", "scipy"},
        "own": ("errors", "engine"),
        "stdlib_except": {"sqlite3"},
    },
    "library": {
        "packages": {"numpy", "scipy", "sqlite_utils"},
        "own": ("errors", "engine", "library"),
        "stdlib_except": set(),
    },
    "api": {
        "packages": {"numpy", "scipy", "sqlite_utils"},
        "own": ("errors", "engine", "library", "api"),
        "stdlib_except": set(),
    },
}
FOR_THE_IMPORTER = ("api", "library", "errors")  # what the importer may use of the plugin package


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != PLUGIN or len(parts) == 1:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a module's source, relative ones resolved."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # from . import pairwise, from ..library import schema: names that are modules count as imported
            found += [
                (node.lineno, f"{module}.{alias.name}" if _is_module(f"{module}.{alias.name}") else module)
                for alias in node.names
            ]
    return found


def _own_modules(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py"))


def _violations(path: Path) -> list[str]:
    """What this module imports that its layer may not, as ``path:line: module``."""
    name = _module_name(path)
    where = path.relative_to(ROOT)
    bad = []
    for line, module in _imports(path):
        top = module.split(".")[0]
        if name.startswith("importer"):
            if top == PLUGIN and _layer(module) not in FOR_THE_IMPORTER:
                bad.append(f"{where}:{line}: {module}")
            continue
        layer = _layer(name)
        if layer == "web" or layer is None and name != PLUGIN:
            if top in DEEP_LEARNING or top == "importer":
                bad.append(f"{where}:{line}: {module}")
            continue
        if name == PLUGIN:  # the package's hooks: they call web.hooks, nothing else of the web at import
            allowed = {"packages": {"pluggy"}, "own": ("engine.blas", "web.hooks"), "stdlib_except": set()}
        else:  # errors.py (no layer of its own): the standard library only
            allowed = ALLOWED.get(layer, {"packages": set(), "own": (), "stdlib_except": set()})
        if top == PLUGIN:
            rest = module[len(PLUGIN) + 1 :]
            if not any(rest == own or rest.startswith(own + ".") for own in allowed["own"]):
                bad.append(f"{where}:{line}: {module}")
        elif top in STDLIB:
            if top in allowed["stdlib_except"]:
                bad.append(f"{where}:{line}: {module}")
        elif top not in allowed["packages"]:
            bad.append(f"{where}:{line}: {module}")
    return bad


def test_every_module_imports_only_what_its_layer_may():
    bad = [v for package in (PLUGIN, "importer") for path in _own_modules(package) for v in _violations(path)]
    assert bad == [], "imports across the layers:\n" + "\n".join(bad)


def test_the_scan_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The check itself: an engine module that imports sqlite3 or the library, an importer module that
    imports the engine or the package for a side effect, are reported."""
    engine = tmp_path / PLUGIN / "engine"
    engine.mkdir(parents=True)
    module = engine / "spy.py"
    module.write_text("import numpy\nimport sqlite3\nfrom ..library import schema\nfrom . import pairwise\n")
    importer = tmp_path / "importer"
    importer.mkdir()
    (importer / "spy.py").write_text(
        f"import {PLUGIN}\nfrom {PLUGIN}.engine import clustering\nfrom {PLUGIN}.api import Photos\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _violations(module) == [
        f"{PLUGIN}/engine/spy.py:2: sqlite3",
        f"{PLUGIN}/engine/spy.py:3: {PLUGIN}.library",
    ]
    assert _violations(importer / "spy.py") == [f"importer/spy.py:1: {PLUGIN}", f"importer/spy.py:2: {PLUGIN}.engine"]


def _loaded(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.splitlines()[-1])


def _import_all(layer: str) -> str:
    return "\n".join(f"import {_module_name(p)}" for p in _own_modules(f"{PLUGIN}/{layer}"))


@pytest.mark.parametrize(
    "code, forbidden",
    [
        pytest.param(
            _import_all("engine"),
            ("sqlite3", "sqlite_utils", "datasette", "jinja2", f"{PLUGIN}.library", f"{PLUGIN}.api", f"{PLUGIN}.web"),
            id="engine",
        ),
        pytest.param(_import_all("library"), ("datasette", "jinja2", f"{PLUGIN}.api", f"{PLUGIN}.web"), id="library"),
        pytest.param(f"import {PLUGIN}.api", ("datasette", "jinja2", f"{PLUGIN}.web"), id="api"),
        pytest.param(f"import {PLUGIN}", ("datasette", "jinja2", "numpy", f"{PLUGIN}.web"), id="the hooks"),
        pytest.param("import importer.cli", ("datasette", "jinja2", "numpy", f"{PLUGIN}.web"), id="the command"),
        pytest.param("import importer.pipeline", ("datasette", "jinja2", f"{PLUGIN}.web"), id="an import"),
        pytest.param("import importer.decode", ("datasette", "jinja2", f"{PLUGIN}.web"), id="a decoder worker"),
        pytest.param(
            f"import {PLUGIN}.web.views, {PLUGIN}.web.hooks, {PLUGIN}.web.sql_functions",
            (*DEEP_LEARNING, "importer", "PIL", "exifread"),
            id="the plugin",
        ),
    ],
)
def test_what_each_layer_loads(code, forbidden):
    loaded = _loaded(code)
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in forbidden)]
    assert bad == []

"""numpy's OpenBLAS kernels: AVX-512 ones asked for only where the CPU has them, before numpy loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datasette_imagecluster.engine import blas

AVX512 = "avx512f avx512dq avx512cd avx512bw avx512vl"


def cpuinfo(vendor: str, flags: str) -> str:
    processor = (
        f"processor\t: {{n}}\nvendor_id\t: {vendor}\ncpu family\t: 25\nflags\t\t: fpu sse2 avx avx2 fma {flags}\n\n"
    )
    return processor.format(n=0) + processor.format(n=1)


@pytest.mark.parametrize(
    "vendor,flags,expected,avx512",
    [
        ("AuthenticAMD", AVX512 + " avx512_bf16", "SkylakeX", True),  # Zen 4
        ("AuthenticAMD", AVX512, "SkylakeX", True),
        ("HygonGenuine", AVX512, "SkylakeX", True),
        ("AuthenticAMD", "", None, False),  # Zen 3: AVX2 only
        ("AuthenticAMD", AVX512.replace("avx512vl", ""), None, False),  # a subset the kernels use is missing
        ("GenuineIntel", AVX512, None, True),  # OpenBLAS already picks SkylakeX or newer there
    ],
)
def test_kernels_for(vendor, flags, expected, avx512):
    assert blas.kernels_for(cpuinfo(vendor, flags)) == expected
    assert blas.has_avx512(cpuinfo(vendor, flags)) is avx512


def test_a_cpuinfo_without_flags_asks_for_nothing():
    assert blas.kernels_for("processor\t: 0\nvendor_id\t: AuthenticAMD\n") is None
    assert not blas.has_avx512("")


def test_choose_kernels_sets_the_variable_for_an_avx512_amd_cpu(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo("AuthenticAMD", AVX512))
    monkeypatch.delitem(sys.modules, "numpy")  # as in a process that has not loaded it yet
    environ: dict[str, str] = {}
    assert blas.choose_kernels(environ, info) == "SkylakeX"
    assert environ == {"OPENBLAS_CORETYPE": "SkylakeX"}


def test_choose_kernels_leaves_a_users_choice_and_a_loaded_numpy_alone(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo("AuthenticAMD", AVX512))
    mine = {"OPENBLAS_CORETYPE": "Zen"}
    assert blas.choose_kernels(mine, info) is None  # numpy is loaded in this process: too late to ask
    monkeypatch.delitem(sys.modules, "numpy")
    assert blas.choose_kernels(mine, info) is None
    assert mine == {"OPENBLAS_CORETYPE": "Zen"}
    assert blas.choose_kernels({}, tmp_path / "missing") is None  # no /proc/cpuinfo: OpenBLAS chooses


CHILD = """
import os, sys, json
import {module}
loaded_first = "numpy" in sys.modules
from datasette_imagecluster.engine.blas import loaded_kernels
print(json.dumps([loaded_first, os.environ.get("OPENBLAS_CORETYPE"), loaded_kernels()]))
"""


@pytest.mark.parametrize("module", ["datasette_imagecluster", "importer.cli"])
def test_the_choice_is_made_before_numpy_loads_in_a_fresh_process(module):
    """The plugin (as Datasette loads it) and the command: the variable is set iff this CPU calls for it,
    numpy is not loaded before the choice, and numpy's OpenBLAS runs the chosen kernels."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module)], env=env, capture_output=True, text=True, check=True
    )
    loaded_first, variable, kernels = json.loads(out.stdout)
    expected = blas.kernels_for(Path("/proc/cpuinfo").read_text())
    assert variable == expected
    if module == "datasette_imagecluster":
        assert not loaded_first
    if expected:
        assert kernels == expected
    else:
        assert kernels  # OpenBLAS's own choice, e.g. Haswell on Zen 3

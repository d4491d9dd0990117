"""Reads photos and photo-manager catalogs and writes the imagecluster database.

Everything heavy (Pillow, exifread, TensorFlow, PyTorch) lives in this
package, never in the Datasette plugin. The data flows folders or catalogs ->
decode/exif -> models -> store, orchestrated by pipeline; cli is the
``imagecluster`` command. Of the plugin package it uses the API, the library
and the errors only (tests/test_layers.py).
"""

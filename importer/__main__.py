"""``python -m importer`` runs the ``imagecluster`` command."""

from .cli import cli

cli()

"""The Datasette plugin: hooks, pages, the gallery's cards, SQL functions, permissions and configuration.

The only part that imports Datasette. Its templates and static files lie at
the package's top (``datasette_imagecluster/templates``, ``static``), where
Datasette looks for those of the module it registers as the plugin.
"""

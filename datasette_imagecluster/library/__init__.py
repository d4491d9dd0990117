"""The SQLite contract: every reader and writer of the tables the importer and the plugin share.

Schema and migrations, connections and transactions, fingerprint sets,
labels, tuned parameters, saved clusterings, verdicts and the in-process
caches. No Datasette: the importer and the API use it as it is.
"""

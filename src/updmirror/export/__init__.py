"""Generated configurations for the servers that can stand in for, or beside,
the integrated one: Samba sharing the shared folder, nginx or Apache serving
the store's current snapshot. Made from the tables the mirror itself routes
with (eset/trees.py, [http] in mirror.toml) and the store's layout
(`Store.served_folders()`), never written out by hand a second time.

    routing.py  User-Agent, channel and index tables, as regular expressions
    site.py     the facts one exported web server is made of
    nginx.py, apache.py, samba.py   the writers; commands.py  `updmirror export ...`
"""

__all__ = ["apache", "nginx", "routing", "samba", "site"]

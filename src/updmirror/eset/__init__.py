"""The update format: bytes in, values out; no writers of vendor files.

    updatever.py  read (and rewrite) `update.ver`
    modules.py    the modules an index lists, their paths (normalised and confined)
    nup.py        inspect and verify a `.nup` file (signature, checksums)
    openpgp.py    the OpenPGP packets and signatures `.nup` files carry
    rar.py        a RAR-wrapped index, read
    trees.py      the table of trees and channels, User-Agent routing, the
                  indexes a mirror of some trees and channels holds

The room's surface is these modules: `from updmirror.eset.trees import TREES`.
"""

__all__ = ["modules", "nup", "openpgp", "rar", "trees", "updatever"]

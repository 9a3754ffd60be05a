"""The User-Agent of an endpoint of tree X: what a mirror routes on (eset/trees.py reads it back).

Written as the vendor's products write theirs (format notes, section 5);
one table here until the one home for it lands in eset/trees.py.
"""

from __future__ import annotations

import re

#: Agents seen from real products, by tree.
USER_AGENTS = {
    "ep11": "EEA Update (Windows; U; 64bit; BPC 11.0.2044.0; OS: 10.0.26100 SP 0.0 NT; TDB 0; CL 1.1.1)",
    "v16": "ESS Update (Windows; U; 64bit; BPC 16.0.22.0; OS: 10.0.19045 SP 0.0 NT; TDB 29123; CL 1.1.1)",
    "v5": "ESS Update (Windows; U; 32bit; BPC 5.2.9.1; OS: 5.1.2600 SP 3.0 NT; TDB 7000)",
}


def user_agent(tree: str, platform: str = "x64") -> str:
    """The User-Agent an endpoint of `tree` on `platform` sends."""
    bits = "32bit" if platform == "x86" else "64bit"
    known = USER_AGENTS.get(tree)
    if known is not None:
        return re.sub(r"\b(32|64)bit\b", bits, known, count=1)
    m = re.fullmatch(r"(ep|v)(\d+)(?:\.\d+)?", tree)
    if m is None:
        # pcu, v3: no generation the mirror can route on; it answers with its default tree.
        return f"ESS Update (Windows; U; {bits}; BPC 3.0.0.0; OS: 10.0.19045 SP 0.0 NT; TDB 0)"
    product = "EEA" if m.group(1) == "ep" else "ESS"
    return (f"{product} Update (Windows; U; {bits}; BPC {int(m.group(2))}.0.0.0; "
            "OS: 10.0.19045 SP 0.0 NT; TDB 0; CL 1.1.1)")

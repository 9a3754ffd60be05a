"""The structure of a `.nup` or an `update.ver`, as facts two files can be compared by.

A real vendor file and a simulated one differ in keys, sizes, dates and
contents; they must not differ in the shape the format fixes. `nup_facts`
walks a `.nup` packet by packet with its own framing reader (independent of
the mirror's, which is what is being checked) and returns ordered facts:
packet tags, header format and length form, one-pass order and flags,
algorithms, signature versions and subpackets, the literal's format and
name, the `[update_info]` text, the inner blob. `index_facts` does the same
for an index. `differences` lists every fact that differs, readably.

Facts whose key starts with "~" describe but are not compared (lengths,
times, names that vary from file to file).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from updmirror.eset import openpgp

Facts = dict[str, str]


@dataclass
class _Packet:
    offset: int
    tag: int
    form: str      # "old, shortest length", "new, partial lengths 2^9 x 3 + 1-byte", ...
    body: bytes
    end: int


def _packets(data: bytes, start: int = 0, end: int | None = None) -> list[_Packet]:
    end = len(data) if end is None else end
    out, pos = [], start
    while pos < end:
        h = data[pos]
        if not h & 0x80:
            raise ValueError(f"byte {pos} is not a packet header (0x{h:02x})")
        if h & 0x40:
            tag, pos, body, forms = h & 0x3F, pos + 1, b"", []
            while True:
                o = data[pos]
                if o < 192:
                    n, pos, partial, f = o, pos + 1, False, "1-byte"
                elif o < 224:
                    n, pos, partial, f = ((o - 192) << 8) + data[pos + 1] + 192, pos + 2, False, "2-byte"
                elif o == 255:
                    n, pos, partial, f = int.from_bytes(data[pos + 1:pos + 5], "big"), pos + 5, False, "5-byte"
                else:
                    n, pos, partial, f = 1 << (o & 0x1F), pos + 1, True, f"partial 2^{o & 0x1F}"
                body += data[pos:pos + n]
                pos += n
                forms.append(f)
                if not partial:
                    break
            shortest = 1 if len(body) < 192 else 2 if len(body) < 8384 else 5
            plain = len(forms) == 1 and forms[0] == f"{shortest}-byte"
            form = "new, shortest length" if plain else f"new, {' + '.join(_runs(forms))}"
        else:
            tag, ltype = (h >> 2) & 0x0F, h & 3
            if ltype == 3:
                n, pos, form = end - pos - 1, pos + 1, "old, indeterminate length"
            else:
                k = (1, 2, 4)[ltype]
                n = int.from_bytes(data[pos + 1:pos + 1 + k], "big")
                need = 1 if n < 0x100 else 2 if n < 0x10000 else 4
                form = "old, shortest length" if k == need else f"old, {k}-byte length where {need} would do"
                pos += 1 + k
            body = data[pos:pos + n]
            pos += n
        out.append(_Packet(pos - len(body), tag, form, body, pos))
    return out


def _runs(forms: list[str]) -> list[str]:
    runs: list[list] = []
    for f in forms:
        if runs and runs[-1][0] == f:
            runs[-1][1] += 1
        else:
            runs.append([f, 1])
    return [f if n == 1 else f"{f} x{n}" for f, n in runs]


def _subpacket_kinds(area: bytes) -> list[tuple[int, bytes]]:
    return list(openpgp._subpackets(area))


def _signature_facts(prefix: str, body: bytes, facts: Facts, one_pass_ids: list[str]) -> None:
    sig = openpgp.parse_signature(body)
    algo, hash_ = openpgp.algo_name(sig.pubkey_algo), openpgp.hash_name(sig.hash_algo)
    facts[prefix] = f"v{sig.version} signature type 0x{sig.sig_type:02x}, {algo}/{hash_}"
    if sig.version == 4:
        hl = int.from_bytes(body[4:6], "big")
        hashed = _subpacket_kinds(body[6:6 + hl])
        ul = int.from_bytes(body[6 + hl:8 + hl], "big")
        unhashed = _subpacket_kinds(body[8 + hl:8 + hl + ul])
        facts[f"{prefix} hashed subpackets"] = ", ".join(
            str(k) if k in (2, 16, 33) else f"{k}={d.hex()}" for k, d in hashed)
        facts[f"{prefix} unhashed subpackets"] = ", ".join(str(k) for k, _ in unhashed)
    if one_pass_ids:
        where = one_pass_ids.index(sig.key_id) + 1 if sig.key_id in one_pass_ids else None
        facts[f"{prefix} issuer"] = f"one-pass {where}" if where else "not announced"
    bits = {"RSA": "1 MPI", "DSA": "2 MPIs"}.get(algo, "?")
    facts[f"{prefix} value"] = f"{bits} of {'/'.join(str((m.bit_length() + 7) // 8 * 8) for m in sig.mpis)} bits max"
    facts[f"~{prefix} key id"] = sig.key_id or "?"
    facts[f"~{prefix} created"] = str(sig.created)


def _message_facts(prefix: str, data: bytes, facts: Facts, *, text: bool) -> None:
    """Facts of a one-pass signed message; `text`: its literal holds [update_info]."""
    packets = _packets(data)
    one_pass_ids: list[str] = []
    literal_date = None
    sig_times = []
    for n, p in enumerate(packets, start=1):
        key = f"{prefix}packet {n}"
        facts[key] = f"tag {p.tag}, {p.form}"
        facts[f"~{key} length"] = str(len(p.body))
        if p.tag == openpgp.TAG_ESET_KEY:
            facts[f"{key} version byte"] = p.body[:1].hex()
            _key_block_facts(f"{key} key block ", p.body[1:], facts)
        elif p.tag == openpgp.TAG_ONE_PASS:
            op = openpgp.parse_one_pass(p.body)
            one_pass_ids.append(op.key_id)
            facts[key] += (f": v{p.body[0]} type 0x{op.sig_type:02x}, {openpgp.algo_name(op.pubkey_algo)}/"
                           f"{openpgp.hash_name(op.hash_algo)}, last={p.body[-1]}")
            facts[f"~{key} key id"] = op.key_id
        elif p.tag == openpgp.TAG_LITERAL:
            fmt, name_len = p.body[:1], p.body[1]
            name = p.body[2:2 + name_len].decode("latin-1")
            literal_date = int.from_bytes(p.body[2 + name_len:6 + name_len], "big")
            facts[f"{key} format"] = repr(fmt)
            facts[f"{key} name"] = _name_shape(name)
            facts[f"~{key} name"] = name
            facts[f"~{key} date"] = str(literal_date)
            content = p.body[6 + name_len:]
            if text:
                _text_facts(f"{key} ", content, facts)
            else:
                facts[f"{key} content starts"] = repr(content[:2]) + (
                    " + ESET-MODULE text" if content[:18] == b"\r\n\r\nESET-MODULE -" else "")
        elif p.tag == openpgp.TAG_SIGNATURE:
            _signature_facts(key, p.body, facts, one_pass_ids)
            sig_times.append(openpgp.parse_signature(p.body).created)
    if literal_date is not None and sig_times:
        facts[f"{prefix}signatures made within 10 s of the literal's date"] = str(
            all(abs(t - literal_date) <= 10 for t in sig_times))


def _name_shape(name: str) -> str:
    if re.fullmatch(r"em\d{3}_(32|64|a64)_[ln]\d\.(dll\.)?nup", name):
        return "the file's own name (emNNN_BB_lK.nup)"
    if re.fullmatch(r"em\d{3}_(32|64|a64)\.dat", name):
        return "a module data name (emNNN_BB.dat)"
    return repr(name)


def _key_block_facts(prefix: str, block: bytes, facts: Facts) -> None:
    for n, p in enumerate(_packets(block), start=1):
        key = f"{prefix}packet {n}"
        facts[key] = f"tag {p.tag}, {p.form}"
        if p.tag == openpgp.TAG_PUBLIC_KEY:
            k = openpgp.parse_public_key(p.body)
            size = getattr(k.key, "key_size", "?")
            extra = f", e={k.key.public_numbers().e}" if openpgp.algo_name(k.algo) == "RSA" else ""
            facts[f"{key} key"] = f"v{p.body[0]} {openpgp.algo_name(k.algo)}-{size}{extra}"
            facts[f"~{key} fingerprint"] = k.fingerprint
        elif p.tag == openpgp.TAG_USER_ID:
            facts[f"~{key} user ID"] = p.body.decode("utf-8", "replace")
        elif p.tag == openpgp.TAG_SIGNATURE:
            _signature_facts(key, p.body, facts, [])


def _text_facts(prefix: str, content: bytes, facts: Facts) -> None:
    end = content.find(b"[update_data]")
    text = content[:end].decode("utf-8", "replace")
    facts[f"{prefix}text starts"] = repr(text[:17])
    endings = {"\r\n" if m.group(0) == "\r\n" else "\n" for m in re.finditer(r"\r?\n", text)}
    facts[f"{prefix}text line endings"] = "/".join(sorted(repr(e) for e in endings))
    lines = text.replace("\r\n", "\n").split("\n")
    pairs = [ln.split("=", 1) for ln in lines if "=" in ln]
    facts[f"{prefix}text keys"] = ", ".join(k for k, _ in pairs)
    facts[f"{prefix}text quoted keys"] = ", ".join(k for k, v in pairs if v.startswith('"'))
    values = dict(pairs)
    crc = values.get("crc", "")
    facts[f"{prefix}crc written"] = "decimal" if crc.isdigit() else f"not decimal: {crc!r}"
    facts[f"{prefix}filename"] = _name_shape(values.get("filename", "").strip('"'))
    facts[f"{prefix}between the last key line and [update_data]"] = repr(text[len(text.rstrip("\r\n")):])
    after = content[end + len(b"[update_data]"):]
    facts[f"{prefix}after [update_data]"] = repr(after[:4])
    blob = after[4:] if after[:2] == b"\r\n" else after[3:]
    facts[f"{prefix}filesize is the inner blob's length"] = str(values.get("filesize") == str(len(blob)))
    facts[f"{prefix}crc is the inner blob's CRC-32"] = str(crc == str(zlib.crc32(blob)))
    try:
        _message_facts(f"{prefix}inner ", blob, facts, text=False)
    except (ValueError, IndexError, openpgp.PGPError) as exc:
        facts[f"{prefix}inner"] = f"not an OpenPGP message ({exc})"


def nup_facts(data: bytes) -> Facts:
    facts: Facts = {}
    _message_facts("", data, facts, text=True)
    return facts


def index_facts(data: bytes) -> Facts:
    """Facts of an index: line endings, sections, key order, size=, file= forms."""
    facts: Facts = {}
    text = data.decode("utf-8", "replace")
    endings = {m.group(0) for m in re.finditer(r"\r?\n", text)}
    facts["line endings"] = "/".join(sorted(repr(e) for e in endings))
    facts["ends with a line ending"] = str(text.endswith("\n"))
    sections = re.split(r"\r?\n(?=\[)", text.strip("\r\n"))
    modules, others = [], []
    for chunk in sections:
        lines = chunk.replace("\r\n", "\n").split("\n")
        name = lines[0].strip("[]")
        pairs = [ln.split("=", 1) for ln in lines[1:] if "=" in ln]
        (modules if any(k == "file" for k, _ in pairs) else others).append((name, pairs))
    facts["non-module sections"] = ", ".join(sorted({re.sub(r"_.*", "_*", n) for n, _ in others})) or "none"
    orders = {}
    for _, pairs in modules:
        # Optional keys aside, every section should share one order.
        order = ", ".join(k for k, _ in pairs if k not in ("size", "language", "level"))
        orders[order] = orders.get(order, 0) + 1
    facts["module key order"] = " | ".join(sorted(orders))
    without = [(n, dict(p)) for n, p in modules if not any(k == "size" for k, _ in p)]
    facts["module sections without size="] = "some" if without else "none"
    facts["sections without size= are all deltas (level 1, 2)"] = str(
        all(d.get("level") in ("1", "2") for _, d in without))
    facts["~module sections"] = str(len(modules))
    forms = set()
    for _, pairs in modules:
        f = dict(pairs)["file"]
        forms.add("full URL" if "://" in f else "host-absolute path" if f.startswith("/") else "bare name")
    facts["file= form"] = ", ".join(sorted(forms))
    regs = [dict(p).get("buildregname", "") for _, p in modules]
    facts["buildregname quoted"] = str(sorted({r.startswith('"') for r in regs}))
    rule = [dict(p).get("buildregname", "").strip('"') == dict(p)["type"].capitalize() + "Build"
            for _, p in modules]
    facts["buildregname is Type + 'Build' in most sections"] = str(sum(rule) >= 0.9 * len(rule))
    versions = [dict(p).get("version", "") for _, p in modules]
    forms = {re.sub(r"\d+", "N", v) for v in versions}
    facts["version forms include"] = ", ".join(sorted(forms & {"N (N)", "N.N (N)"}))
    # Rare ("1425T (20210806)", once in 87): described, not compared.
    facts["~version forms"] = ", ".join(sorted(forms))
    facts["date form"] = ", ".join(sorted({re.sub(r"\d", "d", dict(p).get("date", "")) for _, p in modules}))
    return facts


def differences(real: Facts, simulated: Facts, *, real_name: str = "real", sim_name: str = "simulated",
                ignore: dict[str, str] | None = None) -> list[str]:
    """Every compared fact that differs, one line each; `ignore`: key prefix -> why it may differ."""
    ignore = ignore or {}
    out = []
    for key in list(dict.fromkeys([*real, *simulated])):
        if key.startswith("~") or any(key.startswith(p) for p in ignore):
            continue
        a, b = real.get(key, "(absent)"), simulated.get(key, "(absent)")
        if a != b:
            out.append(f"{key}:\n    {real_name:>9}: {a}\n    {sim_name:>9}: {b}")
    return out


def side_by_side(real: Facts, simulated: Facts) -> str:
    """Both files' facts, for a failure message or a report."""
    keys = list(dict.fromkeys([*real, *simulated]))
    return "\n".join(f"{'=' if real.get(k) == simulated.get(k) else '!'} {k}: {real.get(k, '(absent)')}"
                     + ("" if real.get(k) == simulated.get(k) else f"  <>  {simulated.get(k, '(absent)')}")
                     for k in keys)

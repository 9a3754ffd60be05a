"""`updmirror vendor generate|publish` and the --fault syntax."""

from __future__ import annotations

import json

import pytest

from updmirror.cli import main
from updmirror.vendor import VendorError
from updmirror.vendor.faults import Fault, FaultSet


def test_generate_then_publish_from_the_command_line(tmp_path, capsys):
    root = tmp_path / "vendor"
    assert main(["vendor", "generate", "--root", str(root), "--seed", "7", "--size-mb", "0.3",
                 "--trees", "v5", "--no-dsa"]) == 0
    out = capsys.readouterr().out
    state = json.loads((root / "vendor.json").read_text())
    assert state["fingerprint"] in out and "v5" in out and "module sections" in out
    assert state["release"] == 1 and not state["dsa"] and not (root / "other-key.pem").exists()
    assert main(["vendor", "publish", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "released:     2" in out
    assert json.loads((root / "vendor.json").read_text())["release"] == 2


def test_command_errors_are_one_line(tmp_path, capsys):
    assert main(["vendor", "generate", "--root", str(tmp_path / "x"), "--trees", "v99"]) == 1
    assert "unknown tree(s) v99" in capsys.readouterr().err
    assert main(["vendor", "publish", "--root", str(tmp_path / "none")]) == 1
    assert "vendor generate" in capsys.readouterr().err
    assert main(["vendor", "serve", "--root", str(tmp_path), "--password", "p", "--listen", "nonsense"]) == 1
    assert "--listen" in capsys.readouterr().err


@pytest.mark.parametrize("spec, kind, match, times, arg", [
    ("status:429,5@*.nup*2", "status", "*.nup", 2, "429,5"),
    ("stall:5@/eset_upd/*", "stall", "eset_upd/*", None, "5"),
    ("endless", "endless", "*", None, None),
    ("bad_crc@*em001*", "bad_crc", "*em001*", None, None),
    ("truncate*1", "truncate", "*", 1, None),
])
def test_fault_syntax(spec, kind, match, times, arg):
    f = Fault.parse(spec)
    assert (f.kind, f.match, f.times, f.arg) == (kind, match, times, arg)


@pytest.mark.parametrize("spec", ["", "nosuchfault", "stall:abc", "Status:500", "status:429,soon"])
def test_bad_fault_syntax(spec):
    with pytest.raises(VendorError):
        Fault.parse(spec)


def test_faults_apply_to_their_kind_of_file_and_count_down():
    faults = FaultSet()
    faults.set([Fault("wrong_size"), Fault("bad_crc"), Fault("status", match="a/*", times=2)])
    assert [f.kind for f in faults.take("eset_upd/v5/update.ver")] == ["wrong_size"]
    assert [f.kind for f in faults.take("x/em001_32_l0.nup")] == ["bad_crc"]
    assert [f.kind for f in faults.take("a/b")] == ["status"]
    assert [f.kind for f in faults.take("a/b")] == ["status"]
    assert faults.take("a/b") == []

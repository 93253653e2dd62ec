"""``ailedger fingerprint dataset``, ``ailedger prove`` and ``ailedger verify proof``, run
through the real entry point (errors become one line and an exit code)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from _cli import run_main as run
from ailedger import merkle
from ailedger.demos.samples import SAMPLE_DATA

SAMPLE = SAMPLE_DATA


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    shutil.copy(SAMPLE / "events.jsonl", path)
    return path


def test_default_is_salted_with_a_private_secret_file_reused_later(
    capsys: pytest.CaptureFixture[str], jsonl: Path
) -> None:
    code, out, err = run(capsys, "fingerprint", "dataset", jsonl, "--json")
    assert code == 0, err
    doc = json.loads(out)
    secret = Path(doc["secret_file"])
    assert secret == jsonl.with_name("events.jsonl.ailedger-secret")
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert "created a new dataset secret" in err
    assert secret.read_text().strip() not in out + err  # never printed
    assert doc["scheme"] == "salted-blake3-index-v1"
    assert (doc["size"], doc["format"], doc["order"]) == (200, "jsonl", "input")
    assert Path(doc["index_file"]).is_file()
    code, again, err = run(capsys, "fingerprint", "dataset", jsonl, "--json")
    assert json.loads(again)["root"] == doc["root"]
    assert "created" not in err


def test_prove_and_verify_membership(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    _, out, _ = run(capsys, "fingerprint", "dataset", jsonl, "--json")
    root = json.loads(out)["root"]
    proof = tmp_path / "p.json"
    code, out, err = run(capsys, "prove", jsonl, "--index", "17", "--out", proof, "--json")
    assert code == 0, err
    assert json.loads(out)["leaf_index"] == 17
    code, out, _ = run(capsys, "verify", "proof", proof, "--root", root, "--json")
    assert code == 0
    checked = json.loads(out)
    assert (checked["valid"], checked["root_checked"]) == (True, True)
    assert checked["not_checked"] == []  # the proof carries the record itself
    # without --root the proof is only checked against the root it carries: say so
    code, out, err = run(capsys, "verify", "proof", proof)
    assert code == 0
    assert f"against its own root {root}" in out
    assert "the root was not checked" in err
    code, out, _ = run(capsys, "verify", "proof", proof, "--json")
    assert json.loads(out)["root_checked"] is False
    assert json.loads(out)["not_checked"][0].startswith("root:")
    code, out, err = run(capsys, "verify", "proof", proof, "--root", root)
    assert f"against the expected root {root}" in out
    assert "root was not checked" not in err
    line = jsonl.read_bytes().split(b"\n")[17]
    record = tmp_path / "r.json"
    record.write_bytes(line + b"\n")
    assert run(capsys, "verify", "proof", proof, "--record", record)[0] == 0
    again = tmp_path / "p2.json"
    assert run(capsys, "prove", jsonl, "--record", record, "--out", again)[0] == 0
    assert json.loads(again.read_text()) == json.loads(proof.read_text())


def test_verify_failures_exit_1_with_one_line(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    run(capsys, "fingerprint", "dataset", jsonl, "--unsalted")
    proof = tmp_path / "p.json"
    assert run(capsys, "prove", jsonl, "--index", "3", "--out", proof)[0] == 0
    text = proof.read_text()
    other_root = merkle.root([b"x"]).hex()
    code, _, err = run(capsys, "verify", "proof", proof, "--root", other_root)
    assert code == 1
    assert "expected " + other_root in err
    hashes = json.loads(text)["inclusion"]["hashes"]
    proof.write_text(
        text.replace(hashes[0], hashes[0][:-1] + ("0" if hashes[0][-1] != "0" else "1"))
    )
    code, _, err = run(capsys, "verify", "proof", proof)
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    proof.write_text(text)
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"event": -1}\n')
    code, _, err = run(capsys, "verify", "proof", proof, "--record", wrong)
    assert code == 1
    assert "does not match" in err
    proof.write_text("{not json")
    assert run(capsys, "verify", "proof", proof)[0] == 1
    assert run(capsys, "verify", "proof", tmp_path / "absent.json")[0] == 4


def test_sorted_non_membership_through_the_cli(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    code, out, err = run(
        capsys, "fingerprint", "dataset", jsonl, "--sorted", "--salt-secret", secret, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["scheme"] == "salted-blake3-record-v1"
    absent = tmp_path / "absent.json"
    absent.write_text('{"event":999,"patient":"P99999"}\n')
    proof = tmp_path / "nm.json"
    code, out, err = run(
        capsys,
        "prove",
        jsonl,
        "--record",
        absent,
        "--salt-secret",
        secret,
        "--out",
        proof,
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["kind"] == "non-membership"
    code, out, _ = run(capsys, "verify", "proof", proof, "--record", absent, "--json")
    assert code == 0
    assert json.loads(out)["kind"] == "dataset-non-membership"


def test_directory_of_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    images = tmp_path / "scans"
    (images / "2026").mkdir(parents=True)
    for i in range(5):
        (images / "2026" / f"scan{i}.png").write_bytes(b"\x89PNG" + bytes([i]) * 50)
    code, out, err = run(capsys, "fingerprint", "dataset", images, "--unsalted", "--json")
    assert code == 0, err
    assert json.loads(out)["format"] == "files"
    proof = tmp_path / "p.json"
    scan = images / "2026" / "scan3.png"
    assert run(capsys, "prove", images, "--record", scan, "--out", proof, "--omit-record")[0] == 0
    assert json.loads(proof.read_text())["record"] == {"path": "2026/scan3.png"}
    code, out, _ = run(capsys, "verify", "proof", proof, "--record", scan, "--json")
    assert code == 0
    assert json.loads(out)["record_checked"] is True
    assert run(capsys, "verify", "proof", proof, "--record", images / "2026" / "scan1.png")[0] == 1


@pytest.mark.parametrize(
    ("name", "data", "code", "message"),
    [
        ("empty.jsonl", b"", 3, "no records"),
        ("bad.jsonl", b'{"a":1}\n{"a":"\xff"}\n', 3, "line 2: invalid UTF-8"),
        ("ragged.csv", b"a,b\n1,2\n3\n", 3, "line 3: ragged row"),
        ("data.bin", b"x", 3, "cannot tell the dataset format"),
    ],
)
def test_bad_datasets(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    name: str,
    data: bytes,
    code: int,
    message: str,
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    got, _, err = run(capsys, "fingerprint", "dataset", path, "--unsalted")
    assert got == code
    assert message in err
    assert "Traceback" not in err


def test_bad_options_and_missing_inputs(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    assert run(capsys, "fingerprint", "dataset", tmp_path / "absent.jsonl")[0] == 4
    secret = tmp_path / "s"
    code, _, err = run(
        capsys, "fingerprint", "dataset", jsonl, "--unsalted", "--salt-secret", secret
    )
    assert code == 3
    assert "exclude each other" in err
    out = tmp_path / "p.json"
    code, _, err = run(capsys, "prove", jsonl, "--index", "0", "--out", out)
    assert code == 4  # no secret yet, and prove never creates one
    assert "--salt-secret" in err
    run(capsys, "fingerprint", "dataset", jsonl, "--unsalted")
    assert run(capsys, "prove", jsonl, "--index", "200", "--out", out)[0] == 3
    assert run(capsys, "prove", jsonl, "--out", out)[0] == 3
    assert run(capsys, "verify", "proof", out, "--root", "zz")[0] == 3


def test_plain_inclusion_proof_document(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    entries = [b"a", b"b", b"c"]
    doc = merkle.InclusionProof(
        3,
        1,
        merkle.leaf_hash(b"b"),
        tuple(merkle.inclusion_proof(entries, 1)),
        merkle.root(entries),
    ).to_dict()
    path = tmp_path / "inc.json"
    path.write_text(json.dumps(doc))
    root = merkle.root(entries).hex()
    # a stated leaf hash against a pinned root needs the size too (or the entry itself)
    code, _, err = run(capsys, "verify", "proof", path, "--root", root)
    assert code == 1
    assert "[proof-size-unpinned]" in err
    assert run(capsys, "verify", "proof", path, "--root", root, "--size", "3")[0] == 0
    entry = tmp_path / "entry"
    entry.write_bytes(b"b")
    assert run(capsys, "verify", "proof", path, "--root", root, "--record", entry)[0] == 0
    doc["leaf_index"] = 2
    path.write_text(json.dumps(doc))
    assert run(capsys, "verify", "proof", path)[0] == 1


def test_sample_csv_fingerprint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(
        capsys,
        "fingerprint",
        "dataset",
        SAMPLE / "patients.csv",
        "--unsalted",
        "--index-out",
        tmp_path / "idx",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["size"] == 300
    assert doc["metadata"]["header"][:2] == ["patient_id", "age"]
    assert doc["secret_file"] is None


def test_parquet_rows_through_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "label": ["cat", "dog", None]}), path)
    code, out, err = run(capsys, "fingerprint", "dataset", path, "--sorted", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["format"], doc["size"]) == ("parquet", 3)
    assert doc["metadata"]["schema"] == [["id", "int64"], ["label", "string"]]
    record = tmp_path / "r.json"
    record.write_text('{"label": "dog", "id": 2}')
    proof = tmp_path / "p.json"
    assert run(capsys, "prove", path, "--record", record, "--out", proof)[0] == 0
    assert run(capsys, "verify", "proof", proof, "--record", record)[0] == 0
    record.write_text('{"label": "cow", "id": 2}')
    assert run(capsys, "prove", path, "--record", record, "--out", proof, "--json")[0] == 0
    assert json.loads(proof.read_text())["type"].endswith("non-membership-proof/v1")
    by_index = tmp_path / "i.json"
    assert run(capsys, "prove", path, "--index", "2", "--out", by_index)[0] == 0
    assert json.loads(by_index.read_text())["record"] == {"text": '{"id":3,"label":null}'}


def test_verify_pins_the_tree_size(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    _, out, _ = run(capsys, "fingerprint", "dataset", jsonl, "--unsalted", "--json")
    doc = json.loads(out)
    proof = tmp_path / "p.json"
    assert run(capsys, "prove", jsonl, "--index", "5", "--unsalted", "--out", proof)[0] == 0
    size = str(doc["size"])
    assert run(capsys, "verify", "proof", proof, "--root", doc["root"], "--size", size)[0] == 0
    code, _, err = run(capsys, "verify", "proof", proof, "--size", str(doc["size"] + 1))
    assert code == 1
    assert "size" in err


def test_non_membership_pins_root_and_size(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    """A bracket claiming a smaller size names interior nodes as leaves (at size 1, the root
    itself) and "proves" a held record absent against the real root: refused once the size is
    pinned, and a root without a size is refused outright (exit 1, proof-size-unpinned)."""
    _, out, _ = run(capsys, "fingerprint", "dataset", jsonl, "--sorted", "--unsalted", "--json")
    fp = json.loads(out)
    root, size = fp["root"], str(fp["size"])
    held = tmp_path / "held.json"
    held.write_bytes(jsonl.read_bytes().splitlines()[7])
    member = tmp_path / "member.json"
    assert run(capsys, "prove", jsonl, "--record", held, "--sorted", "--out", member)[0] == 0
    doc = json.loads(member.read_text())
    assert doc["type"].endswith("/membership-proof/v1")
    leaf = doc["inclusion"]["leaf_hash"]
    only = merkle.InclusionProof(1, 0, bytes.fromhex(root), (), bytes.fromhex(root)).to_dict()
    lie = {
        "type": doc["type"].replace("/membership-proof/", "/non-membership-proof/"),
        "dataset": {**doc["dataset"], "size": 1},
        "record": doc["record"],
        "salt": None,
        "leaf_hash": leaf,
        "left": only if bytes.fromhex(root) < bytes.fromhex(leaf) else None,
        "right": None if bytes.fromhex(root) < bytes.fromhex(leaf) else only,
    }
    forged = tmp_path / "lie.json"
    forged.write_text(json.dumps(lie))
    code, _, err = run(capsys, "verify", "proof", forged, "--record", held, "--root", root)
    assert code == 1
    assert "[proof-size-unpinned]" in err
    assert "--size" in err
    code, _, err = run(
        capsys, "verify", "proof", forged, "--record", held, "--root", root, "--size", size
    )
    assert code == 1
    assert "[proof-tree-mismatch]" in err
    # Against nothing trusted it is only well formed, and the output says so.
    code, out, _ = run(capsys, "verify", "proof", forged, "--record", held, "--json")
    assert code == 0
    checked = json.loads(out)
    assert (checked["root_checked"], checked["size_checked"]) == (False, False)
    assert [item.split(":")[0] for item in checked["not_checked"]] == ["root", "size"]
    # An honest proof of absence verifies against both, and needs both.
    absent = tmp_path / "absent.json"
    absent.write_text('{"event": "never-happened", "t": 0}')
    proof = tmp_path / "nm.json"
    assert run(capsys, "prove", jsonl, "--record", absent, "--sorted", "--out", proof)[0] == 0
    code, out, err = run(
        capsys, "verify", "proof", proof, "--record", absent, "--root", root, "--size", size,
        "--json",
    )  # fmt: skip
    assert code == 0, err
    checked = json.loads(out)
    assert (checked["kind"], checked["size_checked"], checked["not_checked"]) == (
        "dataset-non-membership",
        True,
        [],
    )
    code, _, err = run(capsys, "verify", "proof", proof, "--record", absent, "--root", root)
    assert code == 1
    assert "[proof-size-unpinned]" in err


# --- Progress bars (issue 11 item 12) -------------------------------------------------------------


def test_byte_progress_shows_a_bar_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from ailedger.cli import _common

    screen = io.StringIO()
    monkeypatch.setattr(_common, "err_console", Console(file=screen, force_terminal=True))
    with _common.byte_progress("fingerprinting", 100) as bar:
        assert bar is not None
        bar(60)
    with _common.byte_progress("fingerprinting", 100, enabled=False) as off:  # --quiet, --json
        assert off is None
    assert "fingerprinting" in screen.getvalue()
    monkeypatch.setattr(_common, "err_console", Console(file=io.StringIO(), force_terminal=False))
    with _common.byte_progress("fingerprinting", 100) as piped:
        assert piped is None


def test_dataset_commands_take_quiet_and_stay_silent_when_piped(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    code, _, err = run(capsys, "fingerprint", "dataset", jsonl, "--unsalted", "--quiet")
    assert code == 0, err
    assert err == ""
    proof = tmp_path / "p.json"
    code, _, err = run(capsys, "prove", jsonl, "--index", "3", "--out", proof, "-q")
    assert code == 0, err
    assert err == ""
    code, _, err = run(capsys, "prove", jsonl, "--index", "4", "--out", proof)
    assert code == 0, err
    assert err == ""  # stderr is not a terminal here: no bar


def test_prove_with_a_truncated_index_exits_7_and_a_stale_one_is_rebuilt(
    capsys: pytest.CaptureFixture[str], jsonl: Path, tmp_path: Path
) -> None:
    _, out, _ = run(capsys, "fingerprint", "dataset", jsonl, "--unsalted", "--json")
    index = Path(json.loads(out)["index_file"])
    whole = index.read_bytes()
    index.write_bytes(whole[:-10])
    proof = tmp_path / "p.json"
    code, _, err = run(capsys, "prove", jsonl, "--index", "3", "--unsalted", "--out", proof)
    assert code == 7
    assert "dataset index" in err
    assert not proof.exists()
    index.write_bytes(whole)
    jsonl.write_bytes(jsonl.read_bytes() + b'{"extra": 1}\n')  # the data changed: stale index
    code, out, err = run(
        capsys, "prove", jsonl, "--index", "200", "--unsalted", "--out", proof, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["size"] == 201

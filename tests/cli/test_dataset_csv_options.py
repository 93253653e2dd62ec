"""``--skip-lines`` and ``--no-header`` through the CLI (issue 11 item 13), on scikit-learn's
own breast-cancer CSV, whose first line is a summary ("569,30,malignant,benign")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _cli import fails, ok
from _cli import run_main as run
from _workflow_util import Setup

FIELDS = 31


@pytest.fixture
def breast_cancer(tmp_path: Path) -> Path:
    sklearn = pytest.importorskip("sklearn")
    source = Path(sklearn.__file__).parent / "datasets" / "data" / "breast_cancer.csv"
    if not source.is_file():
        pytest.skip("scikit-learn ships no breast_cancer.csv")
    path = tmp_path / "breast_cancer.csv"
    path.write_bytes(source.read_bytes())
    return path


def test_without_the_options_it_is_refused_with_a_hint(
    capsys: pytest.CaptureFixture[str], breast_cancer: Path
) -> None:
    code, _, err = run(capsys, "fingerprint", "dataset", breast_cancer, "--unsalted")
    assert code == 3
    assert f"line 2: ragged row with {FIELDS} fields, the header has 4" in err
    assert "--skip-lines" in err
    assert "--no-header" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("options", "size"),
    [(["--skip-lines", "1"], 568), (["--no-header", "--skip-lines", "2"], 568),
     (["--no-header", "--skip-lines", "1"], 569)],
)  # fmt: skip
def test_fingerprint_prove_and_verify(
    capsys: pytest.CaptureFixture[str],
    breast_cancer: Path,
    tmp_path: Path,
    options: list[str],
    size: int,
) -> None:
    code, out, err = run(capsys, "fingerprint", "dataset", breast_cancer, *options, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["size"] == size
    meta = doc["metadata"]
    assert meta["skip_lines"] == int(options[-1])
    assert meta["header_row"] is ("--no-header" not in options)
    assert ("header" in meta) is ("--no-header" not in options)
    assert len(meta["skipped_sha256"]) == 64
    # prove takes the options from the index; the proof verifies against the root
    proof = tmp_path / "p.json"
    code, out, err = run(capsys, "prove", breast_cancer, "--index", "100", "-o", proof, "--json")
    assert code == 0, err
    assert json.loads(out)["root"] == doc["root"]
    lines = breast_cancer.read_bytes().split(b"\n")
    first_record = int(options[-1]) + (0 if "--no-header" in options else 1)
    record = tmp_path / "row.csv"
    record.write_bytes(lines[first_record + 100] + b"\n")
    code, out, err = run(
        capsys, "verify", "proof", proof, "--root", doc["root"], "--record", record, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["record_checked"] is True
    # another row is not the proven record
    record.write_bytes(lines[first_record + 101] + b"\n")
    assert run(capsys, "verify", "proof", proof, "--record", record)[0] == 1


def test_prove_with_other_options_than_the_index_does_not_use_it(
    capsys: pytest.CaptureFixture[str], breast_cancer: Path, tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys, "fingerprint", "dataset", breast_cancer, "--unsalted", "--skip-lines", "1",
        "--json",
    )  # fmt: skip
    one = json.loads(out)["root"]
    proof = tmp_path / "p.json"
    code, out, err = run(
        capsys, "prove", breast_cancer, "--index", "0", "--no-header", "-o", proof, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["size"] == 569
    assert json.loads(out)["root"] != one
    code, _, err = run(capsys, "prove", breast_cancer, "--index", "0", "--skip-lines", "0",
                       "-o", proof)  # fmt: skip
    assert code == 3
    assert "ragged" in err
    code, _, err = run(capsys, "prove", "m", "--tensor", "w", "--skip-lines", "1", "-o", proof)
    assert code == 3
    assert "drop the dataset options" in err


def test_dataset_register_binds_the_options(setup: Setup, breast_cancer: Path) -> None:
    fails(["dataset", "register", breast_cancer, "--name", "bc", "--version", "1",
           "--key", "trainer"], 3, "ragged", "--skip-lines")  # fmt: skip
    doc = ok(["dataset", "register", breast_cancer, "--name", "bc", "--version", "1",
              "--key", "trainer", "--no-header", "--skip-lines", "1"])  # fmt: skip
    predicate = doc["predicate"]
    assert predicate["size"] == 569
    other = ok(["dataset", "register", breast_cancer, "--name", "bc", "--version", "2",
                "--key", "trainer", "--skip-lines", "1"])  # fmt: skip
    assert other["predicate"]["size"] == 568
    # the metadata (options, header, skipped lines) is bound by the statement
    assert predicate["metadata_hash"] != other["predicate"]["metadata_hash"]
    assert predicate["metadata_hash"].startswith("sha256:")

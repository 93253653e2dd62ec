"""Our Ed25519-signed checkpoints and receipts open with Go's reference C2SP code
(``golang.org/x/mod/sumdb/note`` for the signed note, ``.../sumdb/tlog`` for the RFC 6962
inclusion proof), the library the Go toolchain, sumdb and the tlog ecosystem build on.

Needs the Debian packages ``golang-go`` and ``golang-golang-x-mod-dev`` (offline: the program
is built in GOPATH mode against /usr/share/gocode); skipped with one line without them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import rfc8785

from _log_util import envelope
from ailedger.identity.keys import Ed25519Signer
from ailedger.log import (
    Ed25519Cosigner,
    Ed25519NoteKey,
    Receipt,
    TransparencyLog,
    vkey,
)

GOCODE = Path("/usr/share/gocode")
ORIGIN = "example.com/go-interop"

# verify VKEY NOTE                 -> prints the note text
# verify VKEY TLOG_PROOF ENTRY     -> checks the proof's checkpoint and the entry's inclusion
GO_VERIFIER = """\
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	v, err := note.NewVerifier(os.Args[1])
	check(err)
	data, err := os.ReadFile(os.Args[2])
	check(err)
	head, signed, proof := "", string(data), len(os.Args) == 4
	if proof {
		head, signed, _ = strings.Cut(signed, "\\n\\n")
	}
	n, err := note.Open([]byte(signed), note.VerifierList(v))
	check(err)
	if !proof {
		fmt.Print(n.Text)
		return
	}
	cp := strings.Split(n.Text, "\\n")
	size, err := strconv.ParseInt(cp[1], 10, 64)
	check(err)
	root, err := tlog.ParseHash(cp[2])
	check(err)
	lines := strings.Split(head, "\\n")
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
	check(err)
	var p tlog.RecordProof
	for _, line := range lines[2:] {
		h, err := tlog.ParseHash(line)
		check(err)
		p = append(p, h)
	}
	entry, err := os.ReadFile(os.Args[3])
	check(err)
	check(tlog.CheckRecord(p, size, root, index, tlog.RecordHash(entry)))
	fmt.Printf("ok %s %d %d\\n", cp[0], size, index)
}
"""


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None or not (GOCODE / "src/golang.org/x/mod/sumdb/note").is_dir():
        pytest.skip("needs Go: apt-get install golang-go golang-golang-x-mod-dev")
    root = tmp_path_factory.mktemp("go")
    src = root / "src" / "verifier"
    src.mkdir(parents=True)
    (src / "main.go").write_text(GO_VERIFIER)
    binary = root / "verifier"
    env = os.environ | {
        "GO111MODULE": "off",
        "GOPATH": f"{root}:{GOCODE}",
        "GOCACHE": str(root / "cache"),
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    subprocess.run(
        [go, "build", "-o", str(binary), "verifier"],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return binary


def _go(binary: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *(str(a) for a in args)], capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def signed_log(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TransparencyLog, Ed25519NoteKey]]:
    path = tmp_path_factory.mktemp("log") / "log.sqlite"
    with TransparencyLog.open(path, ORIGIN) as log:
        log.append_many([envelope(i) for i in range(13)])
        key = Ed25519NoteKey.from_signer(ORIGIN, Ed25519Signer.generate())
        note = log.checkpoint(key)
        witness = Ed25519Cosigner.from_signer("witness.example/go", Ed25519Signer.generate())
        log.add_cosignature(note.add([witness]), witness)  # Go ignores the cosignature's type
        yield log, key


def test_go_opens_our_ed25519_checkpoint(
    go_verifier: Path, signed_log: tuple[TransparencyLog, Ed25519NoteKey], tmp_path: Path
) -> None:
    log, key = signed_log
    note = log.latest_checkpoint()
    assert len(note.signatures) == 2
    path = tmp_path / "checkpoint"
    path.write_text(note.format())
    opened = _go(go_verifier, vkey(key), path)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == note.text
    # a tampered checkpoint and a stranger's key are refused by Go too
    path.write_text(note.format().replace("\n13\n", "\n14\n", 1))
    tampered = _go(go_verifier, vkey(key), path)
    assert tampered.returncode == 1
    assert "invalid signature for key" in tampered.stderr
    path.write_text(note.format())
    stranger = Ed25519NoteKey.generate(ORIGIN)
    unknown = _go(go_verifier, vkey(stranger), path)
    assert unknown.returncode == 1
    assert "no verifiable signatures" in unknown.stderr


@pytest.mark.parametrize("index", [0, 6, 12])
def test_go_checks_our_receipts(
    go_verifier: Path,
    signed_log: tuple[TransparencyLog, Ed25519NoteKey],
    tmp_path: Path,
    index: int,
) -> None:
    log, key = signed_log
    receipt = Receipt.from_json(log.receipt(index, key).to_json())
    proof = tmp_path / "entry.tlog-proof"
    proof.write_text(receipt.proof.format())
    entry = tmp_path / "entry.json"
    entry.write_bytes(rfc8785.dumps(receipt.envelope.to_dict()))  # what a third party hashes
    checked = _go(go_verifier, receipt.log_key, proof, entry)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"ok {ORIGIN} 13 {index}\n"
    entry.write_bytes(rfc8785.dumps(log.receipt((index + 1) % 13, key).envelope.to_dict()))
    other = _go(go_verifier, receipt.log_key, proof, entry)
    assert other.returncode == 1
    assert other.stderr.strip()

// cosigcheck: a checkpoint published by `ailedger serve`, checked with Go's reference
// signed-note code (golang.org/x/mod/sumdb/note): the log's Ed25519 signature through
// note.NewVerifier, and a witness's C2SP cosignature/v1 (type 0x04) through a note.Verifier
// over crypto/ed25519 that follows c2sp.org/tlog-cosignature (x/mod has no cosignature type).
//
//	cosigcheck LOG_VKEY WITNESS_VKEY NOTE_FILE
//
// Prints the note text, then "cosigned by NAME"; exits 1 unless both signatures verify.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

type cosigVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

func (v cosigVerifier) Name() string    { return v.name }
func (v cosigVerifier) KeyHash() uint32 { return v.hash }

// Verify checks sig = u64 timestamp || Ed25519 signature over
// "cosignature/v1\ntime <T>\n" || checkpoint text.
func (v cosigVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	signed := append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), msg...)
	return ed25519.Verify(v.key, signed, sig[8:])
}

func newCosigVerifier(vkey string) (cosigVerifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hexID, b64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return cosigVerifier{}, fmt.Errorf("malformed witness vkey")
	}
	id, err := hex.DecodeString(hexID)
	if err != nil || len(id) != 4 {
		return cosigVerifier{}, fmt.Errorf("malformed witness key ID")
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x04 {
		return cosigVerifier{}, fmt.Errorf("not a cosignature/v1 Ed25519 key")
	}
	h := sha256.Sum256(append([]byte(name+"\n"), raw...))
	if !bytes.Equal(h[:4], id) {
		return cosigVerifier{}, fmt.Errorf("witness key ID does not match the key")
	}
	return cosigVerifier{name, binary.BigEndian.Uint32(id), ed25519.PublicKey(raw[1:])}, nil
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	logV, err := note.NewVerifier(os.Args[1])
	check(err)
	witV, err := newCosigVerifier(os.Args[2])
	check(err)
	data, err := os.ReadFile(os.Args[3])
	check(err)
	n, err := note.Open(data, note.VerifierList(logV, witV))
	check(err)
	seen := map[string]bool{}
	for _, s := range n.Sigs {
		seen[s.Name] = true
	}
	if !seen[logV.Name()] || !seen[witV.Name()] {
		check(fmt.Errorf("missing a verified signature (log %v, witness %v)",
			seen[logV.Name()], seen[witV.Name()]))
	}
	fmt.Print(n.Text)
	fmt.Printf("cosigned by %s\n", witV.Name())
}

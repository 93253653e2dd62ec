// tlogproofs: golang.org/x/mod/sumdb/tlog's proofs, read from `ailedger serve`'s tiles.
//
//	tlogproofs URL SIZE ROOT_BASE64 OLD_SIZE... -- INDEX...
//
// For each OLD_SIZE prints "tree OLD_SIZE" and the hex hashes of tlog.ProveTree(OLD_SIZE,
// SIZE) (checked with tlog.CheckTree against the old tree hash Go computes); for each INDEX,
// "record INDEX" and those of tlog.ProveRecord(SIZE, INDEX). Every tile is authenticated by
// tlog.TileHashReader against the signed root. Go's sumdb paths carry the tile height
// (tile/8/...): the C2SP path is the rest.
package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

type reader struct{ url string }

func (r reader) Height() int { return 8 }

func (r reader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		resp, err := http.Get(r.url + "/tile/" + strings.TrimPrefix(t.Path(), "tile/8/"))
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d", t.Path(), resp.StatusCode)
		}
		out[i] = data
	}
	return out, nil
}

func (r reader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func fail(format string, args ...interface{}) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

func show(kind string, n int64, hashes []tlog.Hash) {
	parts := []string{kind, strconv.FormatInt(n, 10)}
	for _, h := range hashes {
		parts = append(parts, hex.EncodeToString(h[:]))
	}
	fmt.Println(strings.Join(parts, " "))
}

func main() {
	url := os.Args[1]
	size, _ := strconv.ParseInt(os.Args[2], 10, 64)
	raw, _ := base64.StdEncoding.DecodeString(os.Args[3])
	var root tlog.Hash
	copy(root[:], raw)
	thr := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, reader{url})
	records := false
	for _, arg := range os.Args[4:] {
		if arg == "--" {
			records = true
			continue
		}
		n, _ := strconv.ParseInt(arg, 10, 64)
		if records {
			p, err := tlog.ProveRecord(size, n, thr)
			if err != nil {
				fail("prove record %d: %v", n, err)
			}
			show("record", n, p)
			continue
		}
		p, err := tlog.ProveTree(size, n, thr)
		if err != nil {
			fail("prove tree %d: %v", n, err)
		}
		old, err := tlog.TreeHash(n, thr)
		if err != nil {
			fail("tree hash %d: %v", n, err)
		}
		if err := tlog.CheckTree(p, size, root, n, old); err != nil {
			fail("check tree %d: %v", n, err)
		}
		show("tree", n, p)
	}
}

// tlogcheck: an independent tiles client (golang.org/x/mod/sumdb/tlog) against `ailedger serve`.
//
//	tlogcheck URL SIZE ROOT_BASE64
//
// Authenticates the log's hash tiles against the checkpoint's root (tlog.TileHashReader checks
// every tile it reads), recomputes the tree hash, and proves three records, each hashed by Go
// from the entry bundle. Go's sumdb paths carry the tile height (tile/8/...) and name entry
// bundles "data": the C2SP path is the rest. Prints the C2SP paths of two tiles, then "ok".
package main

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

type reader struct{ url string }

func c2sp(t tlog.Tile) string {
	return strings.Replace(strings.TrimPrefix(t.Path(), "tile/8/"), "data/", "entries/", 1)
}

func get(url string) []byte {
	resp, err := http.Get(url)
	if err != nil {
		fail("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		fail("GET %s: %d %s", url, resp.StatusCode, data)
	}
	return data
}

func (r reader) Height() int { return 8 }

func (r reader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		out[i] = get(r.url + "/tile/" + c2sp(t))
	}
	return out, nil
}

func (r reader) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func fail(format string, args ...interface{}) {
	fmt.Printf(format+"\n", args...)
	os.Exit(1)
}

func entry(url string, size, i int64) []byte {
	n := i / 256
	w := int64(256)
	if (n+1)*256 > size {
		w = size - n*256
	}
	data := get(url + "/tile/" + c2sp(tlog.Tile{H: 8, L: -1, N: n, W: int(w)}))
	for k := int64(0); ; k++ {
		if len(data) < 2 {
			fail("bundle too short")
		}
		l := int(data[0])<<8 | int(data[1])
		if k == i%256 {
			return data[2 : 2+l]
		}
		data = data[2+l:]
	}
}

func main() {
	url := os.Args[1]
	size, _ := strconv.ParseInt(os.Args[2], 10, 64)
	raw, _ := base64.StdEncoding.DecodeString(os.Args[3])
	var root tlog.Hash
	copy(root[:], raw)
	thr := tlog.TileHashReader(tlog.Tree{N: size, Hash: root}, reader{url})
	h, err := tlog.TreeHash(size, thr)
	if err != nil || h != root {
		fail("tree hash: %v", err)
	}
	for _, i := range []int64{0, size / 2, size - 1} {
		p, err := tlog.ProveRecord(size, i, thr)
		if err != nil {
			fail("prove %d: %v", i, err)
		}
		if err := tlog.CheckRecord(p, size, root, i, tlog.RecordHash(entry(url, size, i))); err != nil {
			fail("check %d: %v", i, err)
		}
	}
	fmt.Println(c2sp(tlog.Tile{H: 8, L: 0, N: 1234067, W: 256}))
	fmt.Println(c2sp(tlog.Tile{H: 8, L: -1, N: 5, W: 7}))
	fmt.Println("ok")
}

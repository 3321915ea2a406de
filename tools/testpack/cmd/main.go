// Command testpack writes the tiny fixture pipeline as a retrace pack (see
// package testpack):
//
//	go run ./tools/testpack/cmd --out dist/site/packs/tiny
package main

import (
	"flag"
	"fmt"
	"os"

	"retrace/tools/testpack"
)

func main() {
	golden := flag.String("golden", envOr("RETRACE_GOLDEN", "testdata/golden"), "fixture folder")
	out := flag.String("out", "dist/site/packs/tiny", "pack folder to write")
	mode := flag.String("mode", "f16", "storage policy: f32, f16, q8 or q4")
	shard := flag.Int64("shard-bytes", 1<<20, "shard size in bytes")
	flag.Parse()
	m, err := testpack.Write(*golden, *out, *mode, *shard)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testpack:", err)
		os.Exit(1)
	}
	var n int64
	for _, s := range m.Shards {
		n += s.Bytes
	}
	fmt.Printf("wrote %s: %d shards, %d bytes\n", *out, len(m.Shards), n)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

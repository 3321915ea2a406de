//go:build !js

package main

import (
	"fmt"
	"os"
)

// main outside the browser: this package is the GOOS=js runtime; its core
// (runtime.go) is tested natively.
func main() {
	fmt.Fprintln(os.Stderr, "retrace/wasm is the browser runtime: build it with GOOS=js GOARCH=wasm go build -o retrace.wasm ./wasm")
	os.Exit(2)
}

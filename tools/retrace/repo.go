//go:build !js

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"retrace/nn/pack"
	"retrace/tools/testpack"
)

// repoRoot finds the module root (the folder holding go.mod) above the
// working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the retrace repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}

// goldenDir is the fixture tree ($RETRACE_GOLDEN or testdata/golden).
func goldenDir(root string) string {
	d := os.Getenv("RETRACE_GOLDEN")
	if d == "" {
		d = "testdata/golden"
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(root, d)
	}
	return d
}

// writeTestPack writes the tiny fixture pipeline (random CLIP text
// encoder, conditional UNet and VAE from the golden tree: 16×16 images)
// as an f16 pack at out, in shards of shardBytes so loaders see several
// shards (see tools/testpack).
func writeTestPack(root, out string, shardBytes int64) (*pack.Manifest, error) {
	m, err := testpack.Write(goldenDir(root), out, "f16", shardBytes)
	if err != nil {
		return nil, fmt.Errorf("testpack: %w", err)
	}
	return m, nil
}

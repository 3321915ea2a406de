// Package golden locates and reads the golden fixtures (outputs of the real
// diffusers/transformers code) for tests. The folder is $RETRACE_GOLDEN
// (relative paths are taken from the repository root) or testdata/golden,
// because the same tests run against other fixture trees made with other
// seeds. Third-party data that is not committed (the CLIP BPE vocabulary,
// real TAESD weights) is found through Shared.
package golden

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/safetensors"
)

// RepoRoot finds the module root (the folder holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test")
		dir = parent
	}
}

// Dir returns the fixture folder.
func Dir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("RETRACE_GOLDEN")
	if d == "" {
		d = "testdata/golden"
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(RepoRoot(t), d)
	}
	return d
}

// Open opens <golden>/<name>/io.safetensors; a missing fixture fails the
// test (the tree is committed).
func Open(t testing.TB, name string) (string, *safetensors.File) {
	t.Helper()
	dir := filepath.Join(Dir(t), name)
	f, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
	require.NoError(t, err, "golden fixture %s", name)
	t.Cleanup(func() { f.Close() })
	return dir, f
}

// Shared returns a third-party fixture folder: from the golden folder if it
// has it, else ../shared/fixtures. Skips when absent unless CI is set.
func Shared(t testing.TB, name string) string {
	t.Helper()
	for _, d := range []string{filepath.Join(Dir(t), name), filepath.Join(RepoRoot(t), "..", "shared", "fixtures", name)} {
		if _, err := os.Stat(d); err == nil {
			return d
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("third-party fixture %s not found (../shared/fixtures/%s)", name, name)
	}
	t.Skipf("third-party fixture %s not found", name)
	return ""
}

// F32 reads an io tensor as float32 with its shape.
func F32(t testing.TB, f *safetensors.File, name string) ([]int, []float32) {
	t.Helper()
	ti, ok := f.Info(name)
	require.True(t, ok, "io key %s", name)
	v, err := f.Float32(name)
	require.NoError(t, err, name)
	return ti.Shape, v
}

// Ints reads an integer io tensor with its shape.
func Ints(t testing.TB, f *safetensors.File, name string) ([]int, []int64) {
	t.Helper()
	ti, ok := f.Info(name)
	require.True(t, ok, "io key %s", name)
	v, err := f.Int64(name)
	require.NoError(t, err, name)
	return ti.Shape, v
}

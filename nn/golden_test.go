package nn

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/safetensors"
)

// repoRoot finds the module root (the folder holding go.mod).
func repoRoot(t testing.TB) string {
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

// goldenDir returns the fixture folder: $RETRACE_GOLDEN (relative paths
// are taken from the repository root) or testdata/golden.
func goldenDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("RETRACE_GOLDEN")
	if d == "" {
		d = "testdata/golden"
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(repoRoot(t), d)
	}
	return d
}

// goldenFixture opens <golden>/<name>/io.safetensors; a missing fixture is
// a failure (the tree is committed).
func goldenFixture(t testing.TB, name string) (string, *safetensors.File) {
	t.Helper()
	dir := filepath.Join(goldenDir(t), name)
	f, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
	require.NoError(t, err, "golden fixture %s", name)
	t.Cleanup(func() { f.Close() })
	return dir, f
}

// sharedFixture returns a third-party fixture folder that is not committed
// (real weights, the CLIP vocabulary): from $RETRACE_GOLDEN if it has it,
// else ../shared/fixtures. Skips when absent unless CI is set.
func sharedFixture(t testing.TB, name string) string {
	t.Helper()
	for _, d := range []string{filepath.Join(goldenDir(t), name), filepath.Join(repoRoot(t), "..", "shared", "fixtures", name)} {
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

func ioF32(t testing.TB, f *safetensors.File, name string) ([]int, []float32) {
	t.Helper()
	ti, ok := f.Info(name)
	require.True(t, ok, "io key %s", name)
	v, err := f.Float32(name)
	require.NoError(t, err, name)
	return ti.Shape, v
}

func ioInts(t testing.TB, f *safetensors.File, name string) ([]int, []int64) {
	t.Helper()
	ti, ok := f.Info(name)
	require.True(t, ok, "io key %s", name)
	v, err := f.Int64(name)
	require.NoError(t, err, name)
	return ti.Shape, v
}

// bothBackends runs fn as subtests on the Go reference and the GPU.
func bothBackends(t *testing.T, fn func(t *testing.T, be Backend)) {
	t.Run("cpu", func(t *testing.T) { fn(t, NewCPU()) })
	t.Run("gpu", func(t *testing.T) { fn(t, testGPU(t)) })
}

package nn

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/golden"
	"retrace/nn/safetensors"
)

// fashionGolden opens the golden pairs that tools/train/export.py writes for
// retrace's trained default model: testdata/golden-fashion (or
// $RETRACE_GOLDEN_FASHION), fixture layout.
func fashionGolden(t *testing.T, name string) (string, *safetensors.File) {
	d := os.Getenv("RETRACE_GOLDEN_FASHION")
	if d == "" {
		d = "testdata/golden-fashion"
	}
	if !filepath.IsAbs(d) {
		d = filepath.Join(golden.RepoRoot(t), d)
	}
	dir := filepath.Join(d, name)
	f, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
	require.NoError(t, err, "fashion golden fixture %s", name)
	t.Cleanup(func() { f.Close() })
	return dir, f
}

// TestGoldenFashionUNet: retrace reproduces PyTorch's output of the trained
// Fashion-MNIST UNet2DConditionModel (loaded with no unknown or missing
// keys) within 1e-4.
func TestGoldenFashionUNet(t *testing.T) {
	dir, io := fashionGolden(t, "unet")
	bothBackends(t, func(t *testing.T, be Backend) {
		m, err := LoadUNet2DConditionModelDir(be, dir, F32)
		require.NoError(t, err)
		defer m.Free()
		shape, x := ioF32(t, io, "in.sample")
		_, ts := ioInts(t, io, "in.timestep")
		cs, c := ioF32(t, io, "in.encoder_hidden_states")
		_, want := ioF32(t, io, "out.sample")
		xs, ctx := be.Upload(shape, x), be.Upload(cs, c)
		out, err := m.Forward(be, xs, toF32(ts), ctx)
		require.NoError(t, err)
		requireClose(t, want, readT(t, be, out), 1e-4, 1e-4, "fashion unet out.sample")
		Free(xs, ctx, out)
	})
}

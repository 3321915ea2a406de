package samplers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

// EditImage on the tiny pipeline: reconstruction-only runs of the exact
// methods return the VAE round trip of the source image; an edit with
// another prompt changes it; every method runs.
func TestEditImage(t *testing.T) {
	be := nn.NewCPU()
	sd, err := LoadStableDiffusionAny(be, tinyPipelineFolder(t), nn.F32)
	require.NoError(t, err)
	defer sd.Free()
	img := NewNoise(5).Tensor(be, 1, 3, 16, 16)
	x := be.Clamp(img, -1, 1)
	nn.Free(img)
	z, err := sd.encodeImage(be, x)
	require.NoError(t, err)
	vaeRT, err := sd.decodeLatents(be, z)
	require.NoError(t, err)
	want := read(t, be, vaeRT)
	base := EditImageOptions{Image: x, Source: "a photo of a horse", Target: "a photo of a zebra", Steps: 5, Guidance: 3, Seed: 1, CrossReplace: 0.8, SelfReplace: 0.4}
	for _, m := range []string{"edict", "bdia", "ef-ddpm"} {
		o := base
		o.Method, o.ReconstructOnly = m, true
		rec, calls, err := sd.EditImage(be, o)
		require.NoError(t, err, m)
		require.Positive(t, calls)
		require.Less(t, maxAbsDiff(want, read(t, be, rec)), 1e-3, "%s reconstruction", m)
		o.ReconstructOnly = false
		ed, _, err := sd.EditImage(be, o)
		require.NoError(t, err, m)
		require.Greater(t, maxAbsDiff(want, read(t, be, ed)), 1e-3, "%s edit changes the image", m)
		nn.Free(rec, ed)
	}
	for _, m := range []string{"ddim", "direct"} {
		o := base
		o.Method = m
		out, _, err := sd.EditImage(be, o)
		require.NoError(t, err, m)
		for _, v := range read(t, be, out) {
			require.True(t, v >= 0 && v <= 1)
		}
		nn.Free(out)
	}
	o := base
	o.Method = "magic"
	_, _, err = sd.EditImage(be, o)
	require.ErrorContains(t, err, `unknown method "magic"`)
	o.Method, o.Image = "edict", be.Zeros([]int{3, 16, 16})
	_, _, err = sd.EditImage(be, o)
	require.ErrorContains(t, err, "must be [1, C, H, W]")
}

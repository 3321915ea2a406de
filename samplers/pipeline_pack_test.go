package samplers

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/pack"
)

// tinyPipelineFolder lays the tiny fixtures out as a diffusers pipeline folder.
func tinyPipelineFolder(t *testing.T) string { return golden.TinyPipelineFolder(t) }

// A diffusers pipeline folder and its f16 / q8 packs generate the same
// image (within the quantisation error) through the same loader.
func TestPipelineFromFolderAndPack(t *testing.T) {
	folder := tinyPipelineFolder(t)
	be := nn.NewCPU()
	opts := GenerateOptions{Prompt: "a photo of an astronaut", Steps: 4, Guidance: 7.5, Seed: 3, Height: 16, Width: 16}
	sd, err := LoadStableDiffusionAny(be, folder, nn.F32)
	require.NoError(t, err)
	_, ref, err := sd.Generate(be, opts)
	require.NoError(t, err)
	want := read(t, be, ref)
	sd.Free()
	for _, tc := range []struct {
		mode string
		tol  float64
	}{{"f16", 5e-3}, {"q8", 5e-2}} {
		t.Run(tc.mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "pack")
			_, err := pack.Convert(folder, out, pack.Policy{Mode: tc.mode}, 1<<20, nil)
			require.NoError(t, err)
			sd, err := LoadStableDiffusionAny(be, out, nn.F32)
			require.NoError(t, err)
			defer sd.Free()
			_, img, err := sd.Generate(be, opts)
			require.NoError(t, err)
			requireClose(t, want, read(t, be, img), tc.tol, 0, tc.mode+" pack image")
		})
	}
	_, err = LoadStableDiffusionAny(be, t.TempDir(), nn.F32)
	require.ErrorContains(t, err, "neither a diffusers pipeline folder")
}

package samplers

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

// EditImageOptions.OnStep: every method reports increasing counts with the
// latents, the result does not change, and an error from OnStep stops the
// edit (how the browser cancels).
func TestEditImageOnStep(t *testing.T) {
	be := nn.NewCPU()
	sd, err := LoadStableDiffusionAny(be, tinyPipelineFolder(t), nn.F32)
	require.NoError(t, err)
	defer sd.Free()
	img := NewNoise(5).Tensor(be, 1, 3, 16, 16)
	x := be.Clamp(img, -1, 1)
	nn.Free(img)
	defer nn.Free(x)
	base := EditImageOptions{Image: x, Source: "a photo of a horse", Target: "a photo of a zebra", Steps: 3, Guidance: 3, Seed: 1, CrossReplace: 0.8, SelfReplace: 0.4}
	for _, m := range []string{"ddim", "edict", "bdia", "ef-ddpm", "direct"} {
		o := base
		o.Method = m
		plain, _, err := sd.EditImage(be, o)
		require.NoError(t, err, m)
		var ks []int
		o.OnStep = func(k, total int, z *nn.Tensor) error {
			require.LessOrEqual(t, k, total, m)
			if z != nil {
				require.Equal(t, 1, z.Dim(0), m)
				_, err := be.Read(z)
				require.NoError(t, err)
			}
			ks = append(ks, k)
			return nil
		}
		got, _, err := sd.EditImage(be, o)
		require.NoError(t, err, m)
		require.GreaterOrEqual(t, len(ks), 3, m)
		for i := 1; i < len(ks); i++ {
			require.Greater(t, ks[i], ks[i-1], m)
		}
		require.Equal(t, read(t, be, plain), read(t, be, got), m)
		nn.Free(plain, got)

		stop := errors.New("canceled")
		o.OnStep = func(k, _ int, _ *nn.Tensor) error {
			if k >= 1 {
				return stop
			}
			return nil
		}
		_, _, err = sd.EditImage(be, o)
		require.ErrorIs(t, err, stop, m)
		require.NoError(t, be.Err())
	}
}

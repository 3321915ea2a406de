package nn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func toF32(v []int64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func TestGoldenUNet2DTiny(t *testing.T) {
	dir, io := goldenFixture(t, "unet2d_tiny")
	bothBackends(t, func(t *testing.T, be Backend) {
		m, err := LoadUNet2DModelDir(be, dir, F32)
		require.NoError(t, err)
		defer m.Free()
		shape, x := ioF32(t, io, "in.sample")
		_, ts := ioInts(t, io, "in.timestep")
		_, want := ioF32(t, io, "out.sample")
		xs := be.Upload(shape, x)
		out, err := m.Forward(be, xs, toF32(ts))
		require.NoError(t, err)
		requireClose(t, want, readT(t, be, out), 1e-4, 1e-4, "unet2d out.sample")
		_, tsc := ioInts(t, io, "in.timestep_scalar")
		_, want2 := ioF32(t, io, "out.sample_scalar_t")
		out2, err := m.Forward(be, xs, toF32(tsc))
		require.NoError(t, err)
		requireClose(t, want2, readT(t, be, out2), 1e-4, 1e-4, "unet2d out.sample_scalar_t")
		Free(xs, out, out2)
	})
}

func TestGoldenUNet2DCondTiny(t *testing.T) {
	dir, io := goldenFixture(t, "unet2dcond_tiny")
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
		requireClose(t, want, readT(t, be, out), 1e-4, 1e-4, "unet2dcond out.sample")
		_, tf := ioF32(t, io, "in.timestep_float")
		_, want2 := ioF32(t, io, "out.sample_float_t")
		out2, err := m.Forward(be, xs, tf, ctx)
		require.NoError(t, err)
		requireClose(t, want2, readT(t, be, out2), 1e-4, 1e-4, "unet2dcond out.sample_float_t")
		Free(xs, ctx, out, out2)
	})
}

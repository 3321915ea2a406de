package nn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGoldenVAETiny(t *testing.T) {
	dir, io := goldenFixture(t, "vae_tiny")
	bothBackends(t, func(t *testing.T, be Backend) {
		m, err := LoadAutoencoderKLDir(be, dir, F32)
		require.NoError(t, err)
		defer m.Free()
		xs, x := ioF32(t, io, "in.sample")
		img := be.Upload(xs, x)
		mom, err := m.EncodeMoments(be, img)
		require.NoError(t, err)
		_, wantMom := ioF32(t, io, "out.moments")
		requireClose(t, wantMom, readT(t, be, mom), 1e-4, 1e-4, "moments")
		d, err := m.Encode(be, img)
		require.NoError(t, err)
		for name, got := range map[string]*Tensor{"out.latent_mean": d.Mean, "out.latent_logvar": d.LogVar, "out.latent_std": d.Std(be)} {
			_, want := ioF32(t, io, name)
			requireClose(t, want, readT(t, be, got), 1e-4, 1e-4, name)
		}
		zs, z := ioF32(t, io, "in.latent")
		dec, err := m.Decode(be, be.Upload(zs, z))
		require.NoError(t, err)
		_, want := ioF32(t, io, "out.decoded")
		requireClose(t, want, readT(t, be, dec), 1e-4, 1e-4, "out.decoded")
		rec, err := m.Decode(be, d.Mean)
		require.NoError(t, err)
		_, want = ioF32(t, io, "out.reconstruction_mode")
		requireClose(t, want, readT(t, be, rec), 1e-4, 1e-4, "out.reconstruction_mode")
		Free(img, mom, dec, rec)
		d.Free()
	})
}

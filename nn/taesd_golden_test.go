package nn

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/safetensors"
)

type taesdMeta struct {
	Cases []struct {
		Name string             `json:"name"`
		PSNR map[string]float64 `json:"psnr_db"`
	} `json:"cases"`
	Weights struct {
		File   string `json:"file"`
		Config string `json:"config"`
	} `json:"weights"`
}

// psnr01 is 10·log10(1/MSE) of images given in [−1, 1], mapped to [0, 1]
// and clamped, against a reference also in [−1, 1].
func psnr01(got, ref []float32) float64 {
	var se float64
	for i := range got {
		g := math.Min(math.Max((float64(got[i])+1)/2, 0), 1)
		r := (float64(ref[i]) + 1) / 2
		se += (g - r) * (g - r)
	}
	return 10 * math.Log10(1/(se/float64(len(got))))
}

// TestGoldenTAESDReal runs the real pretrained taef2 weights (with the
// GroupNorm branch) on the fixture photos on both backends.
func TestGoldenTAESDReal(t *testing.T) {
	dir := sharedFixture(t, "taesd_real")
	var meta taesdMeta
	b, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &meta))
	io, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
	require.NoError(t, err)
	defer io.Close()
	bothBackends(t, func(t *testing.T, be Backend) {
		var cfg AutoencoderTinyConfig
		require.NoError(t, readJSON(filepath.Join(dir, meta.Weights.Config), &cfg))
		wf, err := safetensors.Open(filepath.Join(dir, meta.Weights.File))
		require.NoError(t, err)
		defer wf.Close()
		m, err := LoadAutoencoderTiny(cfg, NewWeights(be, SafetensorsSource{Files: []*safetensors.File{wf}}))
		require.NoError(t, err)
		defer m.Free()
		for _, c := range meta.Cases {
			shape, img := ioF32(t, io, "in."+c.Name+".image")
			x := be.Upload(shape, img)
			z, err := m.Encode(be, x)
			require.NoError(t, err)
			_, want := ioF32(t, io, "out."+c.Name+".latents")
			gotZ := readT(t, be, z)
			requireClose(t, want, gotZ, 1e-4, 1e-4, c.Name+" latents")

			// 8-bit latents: ±1 allowed only where the reference latent
			// sits within 1e-4 of a rounding boundary.
			u := m.ScaleLatents(be, z)
			uv := readT(t, be, u)
			ref, err := io.Int64("out." + c.Name + ".latents_u8")
			require.NoError(t, err)
			for i, r := range ref {
				q := math.RoundToEven(float64(uv[i]) * 255)
				if q != float64(r) {
					s := float64(want[i])/6 + 0.5
					frac := s*255 - math.Floor(s*255)
					require.InDelta(t, 0.5, frac, 0.5*255*1e-4/3+1e-3, "%s latents_u8[%d] = %v, want %d", c.Name, i, q, r)
					require.InDelta(t, float64(r), q, 1)
				}
			}

			zs, zr := ioF32(t, io, "out."+c.Name+".latents")
			dec, err := m.Decode(be, be.Upload(zs, zr))
			require.NoError(t, err)
			_, want = ioF32(t, io, "out."+c.Name+".decoded")
			gotD := readT(t, be, dec)
			requireClose(t, want, gotD, 1e-4, 1e-4, c.Name+" decoded")

			// forward() = decode of the stored uint8 latents.
			u8 := make([]float32, len(ref))
			for i, r := range ref {
				u8[i] = float32(r) / 255
			}
			fz := m.UnscaleLatents(be, be.Upload(zs, u8))
			fwd, err := m.Decode(be, fz)
			require.NoError(t, err)
			_, want = ioF32(t, io, "out."+c.Name+".forward")
			requireClose(t, want, readT(t, be, fwd), 1e-4, 1e-4, c.Name+" forward")

			// Round trip: decode(encode(x)) within 0.01 dB of the reference.
			rt, err := m.Decode(be, z)
			require.NoError(t, err)
			require.InDelta(t, c.PSNR["decoded"], psnr01(readT(t, be, rt), img), 0.01, "round-trip PSNR")
			Free(x, z, u, dec, fz, fwd, rt)
		}
	})
}

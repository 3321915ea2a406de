package nn

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/safetensors"
)

// fixtureSource loads a golden model's weights into a MapSource so tests
// can rename, drop or reshape keys.
func fixtureSource(t *testing.T, name string) (string, MapSource) {
	dir, _ := goldenFixture(t, name)
	f, err := safetensors.Open(filepath.Join(dir, "weights.safetensors"))
	require.NoError(t, err)
	defer f.Close()
	m := MapSource{}
	for _, n := range f.Names() {
		ti, _ := f.Info(n)
		v, err := f.Float32(n)
		require.NoError(t, err)
		m[n] = MapTensor{Shape: ti.Shape, Data: v}
	}
	return dir, m
}

func unet2dConfig(t *testing.T, dir string) UNet2DConfig {
	var cfg UNet2DConfig
	require.NoError(t, readJSON(filepath.Join(dir, "config.json"), &cfg))
	return cfg
}

func runUNet2D(t *testing.T, be Backend, m *UNet2DModel) []float32 {
	_, io := goldenFixture(t, "unet2d_tiny")
	shape, x := ioF32(t, io, "in.sample")
	_, ts := ioInts(t, io, "in.timestep")
	out, err := m.Forward(be, be.Upload(shape, x), toF32(ts))
	require.NoError(t, err)
	return readT(t, be, out)
}

// Old google/ddpm-* checkpoints store attention as query/key/value/proj_attn.
func TestUNet2DLegacyAttentionNames(t *testing.T) {
	dir, src := fixtureSource(t, "unet2d_tiny")
	legacy := MapSource{}
	renamed := 0
	for n, v := range src {
		for cur, old := range map[string]string{".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."} {
			if strings.Contains(n, cur) {
				n = strings.Replace(n, cur, old, 1)
				renamed++
			}
		}
		legacy[n] = v
	}
	require.Positive(t, renamed)
	be := NewCPU()
	m, err := LoadUNet2DModel(unet2dConfig(t, dir), NewWeights(be, legacy))
	require.NoError(t, err)
	_, io := goldenFixture(t, "unet2d_tiny")
	_, want := ioF32(t, io, "out.sample")
	requireClose(t, want, runUNet2D(t, be, m), 1e-4, 1e-4, "legacy names")
}

func TestModelLoadErrors(t *testing.T) {
	dir, src := fixtureSource(t, "unet2d_tiny")
	cfg := unet2dConfig(t, dir)
	be := NewCPU()
	clone := func() MapSource {
		c := MapSource{}
		for k, v := range src {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name   string
		edit   func(MapSource, *UNet2DConfig)
		errMsg string
	}{
		{"unknown key", func(m MapSource, _ *UNet2DConfig) { m["extra.weight"] = MapTensor{Shape: []int{1}, Data: []float32{0}} }, `unknown keys extra.weight`},
		{"missing key", func(m MapSource, _ *UNet2DConfig) { delete(m, "conv_in.weight") }, `missing key "conv_in.weight"`},
		{"wrong shape", func(m MapSource, _ *UNet2DConfig) {
			m["conv_out.bias"] = MapTensor{Shape: []int{4}, Data: make([]float32, 4)}
		}, `key "conv_out.bias" has shape [4], the model expects [3]`},
		{"block type", func(_ MapSource, c *UNet2DConfig) { c.DownBlockTypes = []string{"DownBlock2D", "SkipDownBlock2D"} }, `down block type "SkipDownBlock2D" is not supported`},
		{"fourier", func(_ MapSource, c *UNet2DConfig) { c.TimeEmbeddingType = "fourier" }, `time_embedding_type "fourier"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, c := clone(), cfg
			c.DownBlockTypes = append([]string(nil), cfg.DownBlockTypes...)
			tc.edit(m, &c)
			_, err := LoadUNet2DModel(c, NewWeights(be, m))
			require.ErrorContains(t, err, tc.errMsg)
		})
	}
}

func TestUNetForwardErrors(t *testing.T) {
	dir, _ := goldenFixture(t, "unet2dcond_tiny")
	be := NewCPU()
	m, err := LoadUNet2DConditionModelDir(be, dir, F32)
	require.NoError(t, err)
	ctx := be.Zeros([]int{2, 7, 32})
	_, err = m.Forward(be, be.Zeros([]int{2, 3, 8, 8}), []float32{1}, ctx)
	require.ErrorContains(t, err, "must be [B, 4, H, W]")
	_, err = m.Forward(be, be.Zeros([]int{2, 4, 7, 8}), []float32{1}, ctx)
	require.ErrorContains(t, err, "multiple of 2")
	_, err = m.Forward(be, be.Zeros([]int{1, 4, 8, 8}), []float32{1}, ctx)
	require.ErrorContains(t, err, "encoder_hidden_states")
	_, err = m.Forward(be, be.Zeros([]int{2, 4, 8, 8}), []float32{1, 2, 3}, ctx)
	require.ErrorContains(t, err, "3 timesteps for a batch of 2")
	be.ClearErr()
	// wrong context width reaches the cross-attention projection
	_, err = m.Forward(be, be.Zeros([]int{2, 4, 8, 8}), []float32{1}, be.Zeros([]int{2, 7, 31}))
	require.Error(t, err)
}

// writeCheckpoint stores src as a diffusers folder with tensors in dtype.
func writeCheckpoint(t *testing.T, cfgPath string, src MapSource, dtype safetensors.DType) string {
	dir := t.TempDir()
	b, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	var ts []safetensors.Tensor
	for n, v := range src {
		switch dtype {
		case safetensors.F16:
			bits := make([]uint16, len(v.Data))
			for i, x := range v.Data {
				bits[i] = Float16(x)
			}
			ts = append(ts, safetensors.Float16Tensor(n, v.Shape, bits))
		case safetensors.BF16:
			raw := make([]byte, 2*len(v.Data))
			for i, x := range v.Data {
				binary.LittleEndian.PutUint16(raw[2*i:], uint16(math.Float32bits(x)>>16))
			}
			ts = append(ts, safetensors.Tensor{Name: n, DType: safetensors.BF16, Shape: v.Shape, Data: raw})
		}
	}
	f, err := os.Create(filepath.Join(dir, "diffusion_pytorch_model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, safetensors.Write(f, ts, nil))
	require.NoError(t, f.Close())
	return dir
}

// Half-precision checkpoints load on both backends, kept as f16 (GPU: packed
// and converted in the kernels) or converted to f32, and stay close to the
// f32 outputs (the difference is the rounding of the weights).
func TestHalfPrecisionCheckpoints(t *testing.T) {
	dir, src := fixtureSource(t, "unet2d_tiny")
	_, io := goldenFixture(t, "unet2d_tiny")
	_, want := ioF32(t, io, "out.sample")
	for _, dt := range []safetensors.DType{safetensors.F16, safetensors.BF16} {
		ck := writeCheckpoint(t, filepath.Join(dir, "config.json"), src, dt)
		bothBackends(t, func(t *testing.T, be Backend) {
			var first []float32
			for _, storage := range []DType{F32, F16} {
				m, err := LoadUNet2DModelDir(be, ck, storage)
				require.NoError(t, err)
				tol := 2e-2
				if dt == safetensors.BF16 {
					tol = 1e-1
				}
				got := runUNet2D(t, be, m)
				requireClose(t, want, got, tol, tol, string(dt)+" checkpoint, "+storage.String()+" storage")
				if first == nil {
					first = got
				} else if dt == safetensors.F16 {
					// The same half values stored as f32 or as packed f16
					// must give the same result.
					requireClose(t, first, got, 1e-4, 1e-4, "f16 checkpoint: f16 vs f32 storage")
				}
				m.Free()
			}
		})
	}
}

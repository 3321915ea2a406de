package watermark

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/samplers/samplertest"
)

func testGPU(t testing.TB) *nn.GPU { return samplertest.GPU(t) }

func bothBackends(t *testing.T, fn func(t *testing.T, be nn.Backend)) {
	samplertest.BothBackends(t, fn)
}

func read(t testing.TB, be nn.Backend, x *nn.Tensor) []float32 { return samplertest.Read(t, be, x) }

func requireClose(t testing.TB, want, got []float32, atol float64, msg string) {
	t.Helper()
	require.Equal(t, len(want), len(got), msg)
	for i := range want {
		if d := math.Abs(float64(want[i]) - float64(got[i])); !(d <= atol) {
			t.Fatalf("%s: element %d: got %v want %v (|diff| %.3g > %.3g)", msg, i, got[i], want[i], d, atol)
		}
	}
}

type treeRingFixture struct {
	Settings map[string]struct {
		Args struct {
			Channel int    `json:"w_channel"`
			Pattern string `json:"w_pattern"`
			Radius  int    `json:"w_radius"`
		} `json:"args"`
		MaskCount int                `json:"mask_count"`
		F32       map[string]float64 `json:"metrics_f32"`
		F64       map[string]float64 `json:"metrics_f64"`
	} `json:"settings"`
}

// requirePValue compares p-values on a log scale: the statistic comes from
// float32 spectra, and its tiny differences move a 1e-150 tail value by a
// few percent. A reference that underflowed to 0 must be below 1e-300 here.
func requirePValue(t testing.TB, want float64, got TreeRingScore, msg string) {
	t.Helper()
	switch {
	case want == 0:
		require.Less(t, got.Log10P, -300.0, msg)
	case want > 1e-3:
		require.InDelta(t, want, got.PValue, 1e-4, msg)
	default:
		require.InEpsilon(t, math.Log10(want), got.Log10P, 1e-3, msg)
	}
}

// TestGoldenTreeRing: keys (rand and ring), masks, injected latents,
// metrics and p-values of the reference code, with the FFTs on each backend.
func TestGoldenTreeRing(t *testing.T) {
	dir, io := golden.Open(t, "treering")
	var cfg treeRingFixture
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	var meta struct {
		Tensors map[string]struct {
			Atol float64 `json:"suggested_atol"`
		} `json:"tensors"`
	}
	b, err = os.ReadFile(filepath.Join(dir, "meta.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &meta))
	atol := func(name string) float64 {
		a := meta.Tensors[name].Atol
		require.NotZero(t, a, "meta.json has no suggested_atol for %s", name)
		return a
	}
	names := make([]string, 0, len(cfg.Settings))
	for s := range cfg.Settings {
		names = append(names, s)
	}
	sort.Strings(names)
	require.NotEmpty(t, names)
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		up := func(name string) *nn.Tensor {
			shape, v := golden.F32(t, io, name)
			return be.Upload(shape, v)
		}
		gt, init, unrel := up("in.gt_init"), up("in.init_latents"), up("in.unrelated_noise")
		defer nn.Free(gt, init, unrel)
		for _, s := range names {
			st := cfg.Settings[s]
			t.Run(s, func(t *testing.T) {
				k, err := NewTreeRing(be, gt, TreeRingOptions{Pattern: st.Args.Pattern, Channel: st.Args.Channel, Radius: st.Args.Radius})
				require.NoError(t, err)
				_, kr := golden.F32(t, io, s+".key_real")
				_, ki := golden.F32(t, io, s+".key_imag")
				requireClose(t, kr, k.KeyRe, atol(s+".key_real"), "key real")
				requireClose(t, ki, k.KeyIm, atol(s+".key_imag"), "key imag")
				mask, err := io.Raw(s + ".mask")
				require.NoError(t, err)
				count := 0
				for i, m := range mask {
					require.Equal(t, m != 0, k.Mask[i], "mask entry %d", i)
					if m != 0 {
						count++
					}
				}
				require.Equal(t, st.MaskCount, count)

				xw, err := k.Inject(be, init)
				require.NoError(t, err)
				defer nn.Free(xw)
				got, err := be.Read(xw)
				require.NoError(t, err)
				_, want := golden.F32(t, io, s+".latents_w")
				requireClose(t, want, got, atol(s+".latents_w"), "latents_w")
				fr, fi := Spectrum(be, xw)
				_, wr := golden.F32(t, io, s+".latents_w_fft_real")
				_, wi := golden.F32(t, io, s+".latents_w_fft_imag")
				vr, err := be.Read(fr)
				require.NoError(t, err)
				vi, err := be.Read(fi)
				require.NoError(t, err)
				nn.Free(fr, fi)
				requireClose(t, wr, vr, atol(s+".latents_w_fft_real"), "F(latents_w) real")
				requireClose(t, wi, vi, atol(s+".latents_w_fft_imag"), "F(latents_w) imag")

				for _, c := range []struct {
					x            *nn.Tensor
					metric, pval string
				}{
					{xw, "w_metric_watermarked_itself", "p_value_watermarked"},
					{init, "no_w_metric_same_noise_unwatermarked", "p_value_same_noise_unwatermarked"},
					{unrel, "metric_unrelated_noise", "p_value_unrelated"},
				} {
					sc, err := k.Score(be, c.x)
					require.NoError(t, err)
					_, m := golden.F32(t, io, s+"."+c.metric)
					require.InDelta(t, float64(m[0]), sc[0].Metric, atol(s+"."+c.metric), c.metric)
					requirePValue(t, st.F64[c.pval], sc[0], c.pval)
					t.Logf("%s %s: metric %.5f (reference %.5f), p %.8g (reference %.8g, log10 p %.2f)", s, c.metric, sc[0].Metric, m[0], sc[0].PValue, st.F64[c.pval], sc[0].Log10P)
				}
			})
		}
	})
}

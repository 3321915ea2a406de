package nn

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// attnVariants are the GPU kernel variants of Attention.
var attnVariants = []string{"reg", "tiled"}

type attnCase struct {
	b, lq, lk, h, d int
	causal          bool
}

func (tc attnCase) String() string {
	return fmt.Sprintf("b%d_lq%d_lk%d_h%d_d%d_causal%v", tc.b, tc.lq, tc.lk, tc.h, tc.d, tc.causal)
}

// attnBoth runs tc on the reference and on g with the same random inputs.
func attnBoth(t *testing.T, g *GPU, c *CPU, tc attnCase, seed uint64) (want, got []float32) {
	t.Helper()
	qs, ks := []int{tc.b, tc.lq, tc.h * tc.d}, []int{tc.b, tc.lk, tc.h * tc.d}
	qv, kv, vv := randn(seed, numel(qs)), randn(seed+1, numel(ks)), randn(seed+2, numel(ks))
	scale := float32(1 / math.Sqrt(float64(tc.d)))
	want = readT(t, c, c.Attention(c.Upload(qs, qv), c.Upload(ks, kv), c.Upload(ks, vv), tc.h, scale, tc.causal))
	got = readT(t, g, g.Attention(g.Upload(qs, qv), g.Upload(ks, kv), g.Upload(ks, vv), tc.h, scale, tc.causal))
	return want, got
}

// TestAttentionMatchesReference compares both kernel variants with the Go
// reference on odd shapes (tolerance 1e-5 abs + 1e-5 rel: the kernels use an
// online softmax, the reference PyTorch's max-subtracted softmax).
func TestAttentionMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []attnCase{
		{2, 1, 1, 1, 8, false},
		{2, 1, 1, 1, 8, true},
		{2, 3, 7, 2, 8, true},
		{2, 7, 3, 1, 40, false},
		{2, 77, 77, 8, 64, true},   // CLIP text encoder
		{2, 300, 77, 8, 40, false}, // UNet cross-attention
		{2, 77, 300, 2, 80, false},
		{2, 300, 300, 1, 160, true},
		{2, 7, 77, 8, 160, false},
		{2, 1, 300, 2, 64, true},
		{2, 300, 1, 8, 80, true},
		{2, 65, 70, 2, 17, true}, // odd head dim, one row past a 64-row tile
		{1, 3, 3, 3, 5, false},
		// long key axes: split over dispatches on CPU adapters (loop budget)
		{1, 5, 2000, 1, 160, false},
		{1, 600, 600, 1, 160, true},
		{1, 70, 1500, 2, 40, false},
	}
	for _, variant := range attnVariants {
		g.Variants["attention"] = variant
		for i, tc := range cases {
			t.Run(variant+"/"+tc.String(), func(t *testing.T) {
				want, got := attnBoth(t, g, c, tc, uint64(10*i))
				requireClose(t, want, got, 1e-5, 1e-5, tc.String())
			})
		}
	}
}

// TestAttentionViews runs on views starting at unaligned element offsets.
func TestAttentionViews(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	const lq, lk, hd = 5, 9, 12 // 3 heads of 4
	qv, kv, vv := randn(1, 3*lq*hd), randn(2, 3*lk*hd), randn(3, 3*lk*hd)
	view := func(be Backend, data []float32, l int) *Tensor {
		return Narrow(be.Upload([]int{3, l, hd}, data), 1, 2) // batch elements 1..2
	}
	for _, variant := range attnVariants {
		g.Variants["attention"] = variant
		want := readT(t, c, c.Attention(view(c, qv, lq), view(c, kv, lk), view(c, vv, lk), 3, 0.5, true))
		got := readT(t, g, g.Attention(view(g, qv, lq), view(g, kv, lk), view(g, vv, lk), 3, 0.5, true))
		requireClose(t, want, got, 1e-5, 1e-5, variant)
	}
}

// TestAttentionSplitsOverBindLimit forces a tiny binding limit so q and out
// are split over batch elements and query rows (the causal mask must use the
// rows' global indices).
func TestAttentionSplitsOverBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 4096 // 1024 floats: 64 rows of 16 per binding
	for _, variant := range attnVariants {
		g.Variants["attention"] = variant
		for _, tc := range []attnCase{{2, 150, 33, 2, 8, true}, {3, 77, 60, 4, 4, false}} {
			want, got := attnBoth(t, g, c, tc, 7)
			requireClose(t, want, got, 1e-5, 1e-5, variant+"/"+tc.String())
		}
	}
	// k of one batch element larger than a binding is a clear error.
	x := g.Upload([]int{1, 2, 16}, make([]float32, 32))
	kv := g.Upload([]int{1, 100, 16}, make([]float32, 1600))
	require.Nil(t, g.Attention(x, kv, kv, 2, 1, false))
	require.ErrorContains(t, g.Err(), "maxStorageBufferBindingSize")
}

func TestAttentionErrors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		up := func(s ...int) *Tensor { return be.Upload(s, make([]float32, numel(s))) }
		for _, tc := range []struct {
			q, k, v *Tensor
			heads   int
			msg     string
		}{
			{up(2, 5, 12), up(2, 7, 12), up(2, 7, 12), 5, "not divisible by 5 heads"},
			{up(2, 5, 12), up(2, 7, 12), up(2, 6, 12), 2, "same shape"},
			{up(2, 5, 12), up(1, 7, 12), up(1, 7, 12), 2, "different batch sizes"},
			{up(2, 5, 12), up(2, 7, 8), up(2, 7, 8), 2, "different widths"},
			{up(10, 12), up(2, 7, 12), up(2, 7, 12), 2, "must be [B, L, heads·head_dim]"},
			{up(2, 5, 12), up(2, 7, 12), up(2, 7, 12), 0, "not divisible by 0 heads"},
		} {
			require.Nil(t, be.Attention(tc.q, tc.k, tc.v, tc.heads, 1, false))
			require.ErrorContains(t, be.Err(), tc.msg, be.Name())
			require.ErrorContains(t, be.Err(), "nn: attention:")
			// later ops propagate nil without a new error
			require.Nil(t, be.Attention(nil, tc.k, tc.v, tc.heads, 1, false))
			require.ErrorContains(t, be.Err(), tc.msg)
			be.ClearErr()
		}
	}
	g := testGPU(t)
	x := g.Upload([]int{1, 2, 2 * 300}, make([]float32, 1200))
	require.Nil(t, g.Attention(x, x, x, 2, 1, false))
	require.ErrorContains(t, g.Err(), "head dim 300 (2 heads) exceeds the supported maximum 256")
}

// BenchmarkAttention times the registered attention cases (SD-1.5 self- and
// cross-attention) on the GPU backend and, unless CPUSkip, the reference,
// and reports ms, GFLOP/s and peak GPU memory.
// go test ./nn/ -run '^$' -bench Attention -benchtime 1x
func BenchmarkAttention(b *testing.B) {
	g := testGPU(b)
	for _, bc := range BenchCases() {
		if bc.Op != "attention" {
			continue
		}
		bes := []Backend{g}
		if !bc.CPUSkip {
			bes = append(bes, NewCPU())
		}
		for _, be := range bes {
			b.Run(bc.Shape+"/"+be.Name(), func(b *testing.B) {
				g.Dev.Trim() // peak memory of this case only
				r := RunBench(be, g.Dev.Info().Name, bc, time.Duration(0), b.N)
				if r.Error != "" {
					b.Fatal(r.Error)
				}
				b.ReportMetric(r.Ms, "ms/run")
				b.ReportMetric(r.GFLOPs, "GFLOP/s")
				if r.PeakBytes > 0 {
					b.ReportMetric(float64(r.PeakBytes)/(1<<20), "peakMiB")
				}
			})
		}
	}
}

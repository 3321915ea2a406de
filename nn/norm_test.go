package nn

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// scaleShiftPair uploads gamma/beta of n values on be in format fmtName:
// "none", "f32" or "f16" (values exactly representable in half precision).
func scaleShiftPair(be Backend, n int, fmtName string, seed uint64) (gamma, beta *Tensor) {
	gv, bv := randn(seed, n), randn(seed+1, n)
	switch fmtName {
	case "f32":
		return be.Upload([]int{n}, gv), be.Upload([]int{n}, bv)
	case "f16":
		gh, bh := make([]uint16, n), make([]uint16, n)
		for i := range gh {
			gh[i], bh[i] = Float16(gv[i]), Float16(bv[i])
		}
		return be.UploadF16([]int{n}, gh), be.UploadF16([]int{n}, bh)
	}
	return nil, nil
}

func offsetBy(v []float32, off, mul float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x*mul + off
	}
	return out
}

// GroupNorm: GPU (float32 shifted partial sums merged with Chan's formula)
// vs the float64 two-pass reference. Outputs are O(1): |diff| ≤ 2e-5 +
// 2e-5·|want|; with a mean of 1000 the float32 mean itself is only known to
// ±3e-5 (half an ulp of 1000), so that case allows 2e-4.
func TestGroupNormMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []struct {
		shape  []int
		groups int
		silu   bool
		params string
		off    float32
		atol   float64
	}{
		{[]int{1, 3, 1, 1}, 3, false, "f32", 0, 2e-5}, // one value per group: var 0
		{[]int{1, 6, 77}, 3, true, "none", 0, 2e-5},
		{[]int{2, 32, 7, 7}, 8, true, "f32", 0, 2e-5},
		{[]int{3, 4, 3, 5}, 1, false, "f16", 0, 2e-5},
		{[]int{2, 8, 33, 31}, 4, true, "f32", 1000, 2e-4}, // large mean
		{[]int{1, 2, 256, 256}, 2, false, "none", 0, 2e-5},
		{[]int{1, 4, 512, 512}, 1, true, "f32", -3, 2e-5}, // 1M values in one group
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%v/g%d/%s", tc.shape, tc.groups, tc.params), func(t *testing.T) {
			xv := offsetBy(randn(uint64(i), numel(tc.shape)), tc.off, 2)
			run := func(be Backend) []float32 {
				gm, bt := scaleShiftPair(be, tc.shape[1], tc.params, 7)
				return readT(t, be, be.GroupNorm(be.Upload(tc.shape, xv), gm, bt, tc.groups, 1e-5, tc.silu))
			}
			requireClose(t, run(c), run(g), tc.atol, 2e-5, "groupnorm")
		})
	}
}

// TestGroupNormBindLimit forces ~3 groups per binding so the stats and
// apply passes split over runs of groups, with x a view at an unaligned
// element offset.
func TestGroupNormBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	shape := []int{2, 8, 9, 11} // 4 groups of 2·99 = 198 values per sample
	g.BindLimit = 4 * 198 * 3
	n := numel(shape)
	xv := randn(11, n+5)
	run := func(be Backend) []float32 {
		full := be.Upload([]int{n + 5}, xv)
		x := Reshape(Narrow(Reshape(full, n+5, 1), 5, n), shape...)
		gm, bt := scaleShiftPair(be, 8, "f32", 3)
		return readT(t, be, be.GroupNorm(x, gm, bt, 4, 1e-6, true))
	}
	requireClose(t, run(c), run(g), 2e-5, 2e-5, "groupnorm split")

	g.BindLimit = 4 * 100 // one group (198 values) no longer fits
	x := g.Upload(shape, xv[:n])
	require.Nil(t, g.GroupNorm(x, nil, nil, 4, 1e-6, false))
	require.ErrorContains(t, g.Err(), "exceeds maxStorageBufferBindingSize")
}

func TestGroupNormErrors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		x := be.Upload([]int{2, 6, 3, 3}, make([]float32, 108))
		require.Nil(t, be.GroupNorm(x, nil, nil, 4, 1e-5, false))
		require.ErrorContains(t, be.Err(), "nn: groupnorm: 4 groups do not divide the 6 channels of x f32[2 6 3 3]")
		be.ClearErr()

		gm := be.Upload([]int{3}, make([]float32, 3))
		require.Nil(t, be.GroupNorm(x, gm, nil, 3, 1e-5, false))
		require.ErrorContains(t, be.Err(), "gamma f32[3] must have shape [6]")
		be.ClearErr()

		require.Nil(t, be.GroupNorm(x, nil, be.Upload([]int{1, 6}, make([]float32, 6)), 3, 1e-5, false))
		require.ErrorContains(t, be.Err(), "beta f32[1 6] must have shape [6]")
		be.ClearErr()

		require.Nil(t, be.GroupNorm(be.Upload([]int{6}, make([]float32, 6)), nil, nil, 3, 1e-5, false))
		require.ErrorContains(t, be.Err(), "must be [N, C, ...]")
		be.ClearErr()

		require.Nil(t, be.GroupNorm(nil, nil, nil, 3, 1e-5, false))
		require.ErrorContains(t, be.Err(), "nil tensor")
		be.ClearErr()
	}
}

// LayerNorm: GPU (workgroup two-pass reductions in float32) vs the float64
// reference; |diff| ≤ 2e-5 + 2e-5·|want| (2e-4 with a mean of 1000, see
// TestGroupNormMatchesReference).
func TestLayerNormMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []struct {
		shape  []int
		params string
		off    float32
		atol   float64
	}{
		{[]int{1}, "f32", 0, 2e-5},
		{[]int{3, 7}, "none", 0, 2e-5},
		{[]int{2, 77, 320}, "f32", 0, 2e-5},
		{[]int{2, 4095}, "f16", 0, 2e-5},
		{[]int{3, 5000}, "f32", 0, 2e-5}, // 256-wide workgroups
		{[]int{4, 768}, "f32", 1000, 2e-4},
	}
	for _, variant := range []string{"wg", "row"} {
		g.Variants["layernorm"] = variant
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%s/%v/%s", variant, tc.shape, tc.params), func(t *testing.T) {
				xv := offsetBy(randn(uint64(i+20), numel(tc.shape)), tc.off, 1.5)
				run := func(be Backend) []float32 {
					gm, bt := scaleShiftPair(be, tc.shape[len(tc.shape)-1], tc.params, 9)
					return readT(t, be, be.LayerNorm(be.Upload(tc.shape, xv), gm, bt, 1e-5))
				}
				requireClose(t, run(c), run(g), tc.atol, 2e-5, "layernorm")
			})
		}
	}
}

func TestLayerNormBindLimitAndErrors(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 4 * 77 * 4 // 4 rows per binding
	shape := []int{3, 7, 77}
	xv := randn(5, numel(shape)+1)
	run := func(be Backend) []float32 {
		full := be.Upload([]int{numel(shape) + 1}, xv)
		x := Reshape(Narrow(full, 1, numel(shape)), shape...)
		gm, bt := scaleShiftPair(be, 77, "f32", 1)
		return readT(t, be, be.LayerNorm(x, gm, bt, 1e-5))
	}
	requireClose(t, run(c), run(g), 2e-5, 2e-5, "layernorm split")
	g.BindLimit = 4 * 50
	require.Nil(t, g.LayerNorm(g.Upload(shape, xv[1:]), nil, nil, 1e-5))
	require.ErrorContains(t, g.Err(), "a row of x f32[3 7 77] exceeds maxStorageBufferBindingSize")
	g.ClearErr()
	g.BindLimit = 0

	for _, be := range []Backend{c, g} {
		x := be.Upload([]int{2, 5}, make([]float32, 10))
		require.Nil(t, be.LayerNorm(x, be.Upload([]int{4}, make([]float32, 4)), nil, 1e-5))
		require.ErrorContains(t, be.Err(), "nn: layernorm: gamma f32[4] must have shape [5]")
		be.ClearErr()
	}
}

// Softmax: |diff| ≤ 1e-7 + 1e-5·|want| (float32 exp and sum vs float64).
func TestSoftmaxMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []struct {
		shape []int
		mul   float32
	}{
		{[]int{1}, 1},
		{[]int{7}, 3},
		{[]int{3, 77}, 1},
		{[]int{2, 4095}, 5},
		{[]int{1, 4097}, 1},
		{[]int{4, 5, 77}, 1e4}, // large magnitudes: exp(x) alone overflows
	}
	for _, variant := range []string{"wg", "row"} {
		g.Variants["softmax"] = variant
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%s/%v", variant, tc.shape), func(t *testing.T) {
				xv := offsetBy(randn(uint64(i+40), numel(tc.shape)), 0, tc.mul)
				want := readT(t, c, c.Softmax(c.Upload(tc.shape, xv)))
				got := readT(t, g, g.Softmax(g.Upload(tc.shape, xv)))
				requireClose(t, want, got, 1e-7, 1e-5, "softmax")
			})
		}
	}
	// a row of equal huge values, and one of huge negatives
	xv := []float32{3e38, 3e38, 3e38, 3e38, -1e30, -2e30, -1e30, -5e29}
	want := readT(t, c, c.Softmax(c.Upload([]int{2, 4}, xv)))
	for _, variant := range []string{"wg", "row"} {
		g.Variants["softmax"] = variant
		got := readT(t, g, g.Softmax(g.Upload([]int{2, 4}, xv)))
		requireClose(t, want, got, 1e-7, 1e-6, "softmax huge "+variant)
		require.Equal(t, float32(0.25), got[0])
	}
}

func TestSoftmaxBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 4 * 77 * 3
	shape := []int{2, 5, 77}
	xv := randn(8, numel(shape))
	want := readT(t, c, c.Softmax(c.Upload(shape, xv)))
	got := readT(t, g, g.Softmax(g.Upload(shape, xv)))
	requireClose(t, want, got, 1e-7, 1e-5, "softmax split")
	g.BindLimit = 4 * 10
	require.Nil(t, g.Softmax(g.Upload(shape, xv)))
	require.ErrorContains(t, g.Err(), "nn: softmax: a row of x f32[2 5 77] exceeds maxStorageBufferBindingSize")
}

// BenchmarkNorm runs the groupnorm, layernorm and softmax cases of
// nn/bench_norm.go through RunBench on the GPU and CPU backends:
//
//	go test ./nn/ -run '^$' -bench BenchmarkNorm -benchtime 1x
func BenchmarkNorm(b *testing.B) {
	bes := []Backend{NewCPU()}
	adapter := "go"
	if g := testGPU(b); g != nil {
		bes = append([]Backend{g}, bes...)
		adapter = g.Dev.Info().Name
		if d := g.Dev.Info().Driver; d != "" {
			adapter = d
		}
	}
	for _, bc := range BenchCases() {
		if bc.Op != "groupnorm" && bc.Op != "layernorm" && bc.Op != "softmax" {
			continue
		}
		for _, be := range bes {
			b.Run(bc.Op+"/"+bc.Shape+"/"+be.Name(), func(b *testing.B) {
				a := adapter
				if be.Name() == "cpu" {
					a = "go"
				}
				r := RunBench(be, a, bc, time.Second, 3)
				if r.Error != "" {
					b.Fatal(r.Error)
				}
				b.ReportMetric(r.Ms*1e6, "ns/op")
				b.ReportMetric(float64(r.Iters), "iters")
				b.Logf("%s %s %s (%s): %.3f ms", r.Op, r.Shape, r.Backend, r.Adapter, r.Ms)
			})
		}
	}
}

package nn

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// naiveMatMul is the plain triple loop the blocked reference is checked
// against: a [batch, M, K] (or [batch, K, M]), b [batch or 1, K, N] (or
// [.., N, K]), accumulated in float64.
func naiveMatMul(av, bv []float32, batch, m, k, n int, transA, transB, bBatched bool) []float32 {
	out := make([]float32, batch*m*n)
	for z := 0; z < batch; z++ {
		az := av[z*m*k:]
		bz := bv
		if bBatched {
			bz = bv[z*k*n:]
		}
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				s := 0.0
				for l := 0; l < k; l++ {
					x, y := az[i*k+l], bz[l*n+j]
					if transA {
						x = az[l*m+i]
					}
					if transB {
						y = bz[j*k+l]
					}
					s += float64(x) * float64(y)
				}
				out[z*m*n+i*n+j] = float32(s)
			}
		}
	}
	return out
}

type mmCase struct {
	batch          []int // leading axes of a (and of b when bBatched)
	m, k, n        int
	transA, transB bool
	bBatched       bool
}

func (tc mmCase) shapes() (as, bs []int) {
	as = append(cloneShape(tc.batch), tc.m, tc.k)
	if tc.transA {
		as = append(cloneShape(tc.batch), tc.k, tc.m)
	}
	bs = []int{tc.k, tc.n}
	if tc.transB {
		bs = []int{tc.n, tc.k}
	}
	if tc.bBatched {
		bs = append(cloneShape(tc.batch), bs...)
	}
	return as, bs
}

var mmCases = []mmCase{
	{nil, 1, 1, 1, false, false, false},
	{nil, 3, 7, 5, false, false, false},
	{nil, 7, 3, 77, true, false, false},
	{nil, 77, 9, 3, false, true, false},
	{nil, 13, 77, 6, true, true, false},
	{nil, 64, 64, 64, false, false, false},
	{nil, 65, 68, 67, false, false, false},
	{nil, 1, 4095, 3, false, false, false},
	{nil, 2, 5, 4095, false, true, false},
	{nil, 300, 260, 9, false, false, false}, // > one K block and M block of the reference
	{[]int{2}, 5, 8, 12, false, false, true},
	{[]int{3}, 7, 13, 5, true, true, true},
	{[]int{2, 3}, 17, 16, 20, false, false, false}, // b shared over the batch
	{[]int{2, 2}, 9, 3, 33, true, false, true},
	// vec4-aligned shapes for every transpose combination (matmul_reg)
	{nil, 8, 12, 16, true, false, false},
	{nil, 12, 8, 20, false, true, false},
	{nil, 16, 20, 8, true, true, false},
	{[]int{3}, 68, 36, 72, true, true, true},
	{[]int{2}, 132, 64, 4, false, false, false},
	{[]int{2}, 8, 7, 16, true, false, true}, // aligned M and N but K % 4 != 0: scalar
}

func TestMatMulReferenceMatchesNaive(t *testing.T) {
	c := NewCPU()
	for i, tc := range mmCases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			as, bs := tc.shapes()
			av, bv := randn(uint64(i), numel(as)), randn(uint64(i+50), numel(bs))
			got := readT(t, c, c.MatMul(c.Upload(as, av), c.Upload(bs, bv), tc.transA, tc.transB))
			want := naiveMatMul(av, bv, numel(tc.batch), tc.m, tc.k, tc.n, tc.transA, tc.transB, tc.bBatched)
			requireClose(t, want, got, 1e-4, 1e-4, fmt.Sprintf("%+v", tc))
		})
	}
}

// TestMatMulMatchesReference runs every kernel variant on the GPU against
// the Go reference; tolerance 1e-4 absolute + relative (f32 sums of ≤ 4095
// products of N(0,1) values in a different order).
func TestMatMulMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, v := range []string{"reg", "tiled"} {
		g.Variants["matmul"] = v
		for i, tc := range mmCases {
			t.Run(fmt.Sprintf("%s/%d", v, i), func(t *testing.T) {
				as, bs := tc.shapes()
				av, bv := randn(uint64(i), numel(as)), randn(uint64(i+50), numel(bs))
				want := readT(t, c, c.MatMul(c.Upload(as, av), c.Upload(bs, bv), tc.transA, tc.transB))
				got := readT(t, g, g.MatMul(g.Upload(as, av), g.Upload(bs, bv), tc.transA, tc.transB))
				requireClose(t, want, got, 1e-4, 1e-4, fmt.Sprintf("%+v", tc))
			})
		}
	}
}

func f16Bits(v []float32) []uint16 {
	h := make([]uint16, len(v))
	for i, x := range v {
		h[i] = Float16(x)
	}
	return h
}

func TestLinearMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	type lc struct {
		x         []int
		out       int
		f16, bias bool
		f16Bias   bool
	}
	lcs := []lc{
		{[]int{1, 1}, 1, false, false, false},
		{[]int{3, 7}, 5, false, true, false},
		{[]int{2, 77, 9}, 3, true, true, false},
		{[]int{2, 5, 8}, 12, true, false, false},
		{[]int{4, 16}, 20, false, true, false},
		{[]int{7, 33}, 77, true, true, true}, // odd K: unaligned halves
		{[]int{2, 4095}, 3, true, true, false},
		{[]int{65, 64}, 67, false, true, true},
		{[]int{3, 70, 64}, 67, true, true, false}, // f16 vec path (K % 8 == 0)
		{[]int{2, 4}, 9, true, true, true},        // K % 8 != 0: scalar f16
	}
	for _, v := range []string{"reg", "tiled"} {
		g.Variants["matmul"] = v
		for i, tc := range lcs {
			t.Run(fmt.Sprintf("%s/%d", v, i), func(t *testing.T) {
				in := tc.x[len(tc.x)-1]
				xv, wv, bv := randn(uint64(i), numel(tc.x)), randn(uint64(i+10), tc.out*in), randn(uint64(i+20), tc.out)
				mk := func(be Backend) *Tensor {
					x := be.Upload(tc.x, xv)
					w := be.Upload([]int{tc.out, in}, wv)
					if tc.f16 {
						w = be.UploadF16([]int{tc.out, in}, f16Bits(wv))
					}
					var b *Tensor
					if tc.bias {
						b = be.Upload([]int{tc.out}, bv)
						if tc.f16Bias {
							b = be.UploadF16([]int{tc.out}, f16Bits(bv))
						}
					}
					return be.Linear(x, w, b)
				}
				gy, cy := mk(g), mk(c)
				require.NoError(t, g.Err())
				require.Equal(t, append(cloneShape(tc.x[:len(tc.x)-1]), tc.out), gy.Shape())
				want, got := readT(t, c, cy), readT(t, g, gy)
				requireClose(t, want, got, 1e-4, 1e-4, fmt.Sprintf("%+v", tc))
			})
		}
	}
}

// BenchmarkMatMul times the registered matmul and linear cases on the Go
// reference and on each GPU kernel variant in the same run, interleaved in
// rounds (the best round counts, so other load on the machine hurts every
// backend alike). RunBench times each case itself (≥ 0.5 s), so run it once:
//
//	go test ./nn/ -run XXX -bench MatMul -benchtime 1x
//
// Metrics: <backend>-ms and <backend>-GFLOP/s per run, and reg/cpu, the
// speed-up of the reg kernel over the reference.
func BenchmarkMatMul(b *testing.B) {
	g := testGPU(b)
	adapter := g.Dev.Info().Name
	for _, bc := range BenchCases() {
		if bc.Op != "matmul" && bc.Op != "linear" {
			continue
		}
		b.Run(bc.Op+"/"+bc.Shape, func(b *testing.B) {
			best := map[string]BenchResult{}
			for round := 0; round < 3; round++ {
				for _, v := range []string{"cpu", "reg", "tiled"} {
					if v == "tiled" && round > 0 {
						continue // slow on CPU adapters; one round is enough
					}
					var be Backend = NewCPU()
					if v != "cpu" {
						g.Variants["matmul"] = v
						be = g
					}
					r := RunBench(be, adapter, bc, 500*time.Millisecond, 2)
					if r.Error != "" {
						b.Fatal(r.Error)
					}
					if o, ok := best[v]; !ok || r.Ms < o.Ms {
						best[v] = r
					}
				}
			}
			for v, r := range best {
				b.ReportMetric(r.Ms, v+"-ms")
				b.ReportMetric(r.GFLOPs, v+"-GFLOP/s")
			}
			b.ReportMetric(best["cpu"].Ms/best["reg"].Ms, "reg/cpu")
		})
	}
}

// TestMatMulF16B checks an f16 right operand (read packed by the kernels):
// N % 8 == 0 takes the vec4 path of matmul_reg, the others scalar loads.
func TestMatMulF16B(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []mmCase{
		{nil, 5, 7, 16, false, false, false},
		{[]int{2}, 4, 12, 16, false, false, true}, // K % 8 != 0 with aligned N: scalar
		{nil, 8, 16, 16, true, false, false},      // vec path
		{[]int{2}, 9, 16, 24, false, false, true},
		{nil, 6, 9, 5, true, false, false},
		{nil, 4, 16, 3, false, true, false},
	}
	for _, v := range []string{"reg", "tiled"} {
		g.Variants["matmul"] = v
		for i, tc := range cases {
			t.Run(fmt.Sprintf("%s/%d", v, i), func(t *testing.T) {
				as, bs := tc.shapes()
				av, bv := randn(uint64(i), numel(as)), randn(uint64(i+7), numel(bs))
				want := readT(t, c, c.MatMul(c.Upload(as, av), c.UploadF16(bs, f16Bits(bv)), tc.transA, tc.transB))
				got := readT(t, g, g.MatMul(g.Upload(as, av), g.UploadF16(bs, f16Bits(bv)), tc.transA, tc.transB))
				requireClose(t, want, got, 1e-4, 1e-4, fmt.Sprintf("%+v", tc))
			})
		}
	}
}

// TestMatMulViews multiplies views at unaligned element offsets (scalar
// path) and aligned ones (vec4 path).
func TestMatMulViews(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, v := range []string{"reg", "tiled"} {
		g.Variants["matmul"] = v
		for _, start := range []int{1, 4} {
			av, bv := randn(1, 10*8*16), randn(2, 16*12)
			run := func(be Backend) []float32 {
				a := Narrow(be.Upload([]int{10, 8, 16}, av), start, 3)
				b := be.Upload([]int{16, 12}, bv)
				return readT(t, be, be.MatMul(a, b, false, false))
			}
			requireClose(t, run(c), run(g), 1e-4, 1e-4, fmt.Sprintf("%s start %d", v, start))
		}
	}
}

func TestMatMulErrors(t *testing.T) {
	other := NewCPU()
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		x := be.Upload([]int{2, 3, 4}, make([]float32, 24))
		cases := []struct {
			f    func() *Tensor
			want string
		}{
			{func() *Tensor { return be.MatMul(x, be.Upload([]int{5, 6}, make([]float32, 30)), false, false) }, "has K=4 but b [5 6]"},
			{func() *Tensor { return be.MatMul(x, be.Upload([]int{5}, make([]float32, 5)), false, false) }, "rank ≥ 2"},
			{func() *Tensor { return be.MatMul(x, be.Upload([]int{3, 4, 2}, make([]float32, 24)), false, false) }, "batch axes"},
			{func() *Tensor { return be.MatMul(x, other.Upload([]int{4, 2}, make([]float32, 8)), false, false) }, "belongs to backend cpu"},
			{func() *Tensor { return be.Linear(x, be.Upload([]int{5, 3}, make([]float32, 15)), nil) }, "expects 3 input features, x [2 3 4] has 4"},
			{func() *Tensor { return be.Linear(x, be.Upload([]int{5, 4, 1}, make([]float32, 20)), nil) }, "must be [out, in]"},
			{func() *Tensor {
				return be.Linear(x, be.Upload([]int{5, 4}, make([]float32, 20)), be.Upload([]int{4}, make([]float32, 4)))
			}, "bias [4] does not match"},
		}
		for _, tc := range cases {
			require.Nil(t, tc.f())
			require.ErrorContains(t, be.Err(), tc.want)
			// nil inputs propagate without a new error
			require.Nil(t, be.MatMul(nil, x, false, false))
			require.ErrorContains(t, be.Err(), tc.want)
			be.ClearErr()
		}
	}
}

// TestMatMulSplitsOverBindLimit forces a tiny binding limit so the batch
// and row splits run (a and out larger than one binding).
func TestMatMulSplitsOverBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, v := range []string{"reg", "tiled"} {
		g.Variants["matmul"] = v
		for i, tc := range []mmCase{
			{[]int{5}, 20, 12, 16, false, false, true}, // batch groups of 4 (a item 240, out 320 floats)
			{nil, 300, 12, 16, false, false, false},    // rows of M: 64 per dispatch
			{nil, 300, 13, 7, false, true, false},      // rows, scalar path
			{[]int{3}, 150, 4, 9, true, false, false},  // transA: one item of a bound whole, out rows split
		} {
			t.Run(fmt.Sprintf("%s/%d", v, i), func(t *testing.T) {
				g.BindLimit = 4096 // 1024 floats (minus alignment) per binding
				defer func() { g.BindLimit = 0; g.ClearErr() }()
				as, bs := tc.shapes()
				av, bv := randn(uint64(i), numel(as)), randn(uint64(i+5), numel(bs))
				want := readT(t, c, c.MatMul(c.Upload(as, av), c.Upload(bs, bv), tc.transA, tc.transB))
				before := g.Dev.Stats().Dispatches
				got := readT(t, g, g.MatMul(g.Upload(as, av), g.Upload(bs, bv), tc.transA, tc.transB))
				require.Greater(t, g.Dev.Stats().Dispatches-before, uint64(1), "expected a split")
				requireClose(t, want, got, 1e-4, 1e-4, fmt.Sprintf("%+v", tc))
			})
		}
	}
	// Linear with a bias: rows of x and out split
	for _, v := range []string{"reg", "tiled"} {
		g.Variants["matmul"] = v
		xv, wv, bv := randn(1, 2*150*12), randn(2, 16*12), randn(3, 16)
		run := func(be Backend) []float32 {
			return readT(t, be, be.Linear(be.Upload([]int{2, 150, 12}, xv), be.Upload([]int{16, 12}, wv), be.Upload([]int{16}, bv)))
		}
		want := run(c)
		g.BindLimit = 4096
		requireClose(t, want, run(g), 1e-4, 1e-4, "linear split "+v)
		g.BindLimit = 0
	}
	// b that cannot be split is a clear error
	g.BindLimit = 4096
	defer func() { g.BindLimit = 0 }()
	require.Nil(t, g.MatMul(g.Upload([]int{2, 4}, make([]float32, 8)), g.Upload([]int{4, 2000}, make([]float32, 8000)), false, false))
	require.ErrorContains(t, g.Err(), "exceeds maxStorageBufferBindingSize")
	g.ClearErr()
}

func TestMatMulAutotune(t *testing.T) {
	g := testGPU(t)
	times := g.AutotuneMatMul()
	require.NoError(t, g.Err())
	require.Len(t, times, 2)
	v := g.Variants["matmul"]
	for _, ms := range times {
		require.LessOrEqual(t, times[v], ms)
	}
	t.Logf("256³ matmul: %v → %s", times, v)
}

package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// unaryTol is each op's tolerance vs the float64 reference (|diff| ≤ atol +
// rtol·|want|). Exact ops: 0. exp-based ops: a few float32 ulps (WGSL allows
// exp 3 + 2|x| ulp). GELU: the erfc fit is 1.2e-7 relative, plus rounding.
var unaryTol = map[UnaryOp][2]float64{
	SiLU: {1e-7, 4e-6}, GELU: {1e-7, 4e-6}, GELUTanh: {1e-7, 4e-6}, QuickGELU: {1e-7, 4e-6},
	ReLU: {0, 0}, Tanh: {1e-7, 4e-6}, Sigmoid: {1e-7, 4e-6}, Exp: {0, 4e-6},
	Neg: {0, 0}, Abs: {0, 0}, Sqrt: {0, 2e-7}, Square: {0, 0},
}

func TestUnaryMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	shapes := [][]int{{1}, {7}, {77}, {4095}, {2, 3, 77}}
	for op := SiLU; op <= Square; op++ {
		for i, shape := range shapes {
			t.Run(fmt.Sprintf("%s/%v", op, shape), func(t *testing.T) {
				xv := offsetBy(randn(uint64(i), numel(shape)), 0, 3)
				if op == Sqrt {
					xv = offsetBy(xv, 0, xv[0]) // mixed signs are fine: NaN on both sides
					for j := range xv {
						xv[j] = float32(math.Abs(float64(xv[j])))
					}
				}
				want := readT(t, c, c.Unary(op, c.Upload(shape, xv)))
				got := readT(t, g, g.Unary(op, g.Upload(shape, xv)))
				tol := unaryTol[op]
				requireClose(t, want, got, tol[0], tol[1], op.String())
			})
		}
	}
}

// Large |x| must saturate, never give NaN/Inf where the function is
// bounded (the textbook tanh is NaN beyond ~44–88).
func TestUnaryLargeMagnitude(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	xv := []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1e-4, -0.29, 0.31, 9, -9, 20, -20, 44.5, -44.5,
		88.8, -88.8, 100, -100, 1e4, -1e4, 3e38, -3e38}
	for _, op := range []UnaryOp{SiLU, GELU, GELUTanh, QuickGELU, Tanh, Sigmoid} {
		t.Run(op.String(), func(t *testing.T) {
			want := readT(t, c, c.Unary(op, c.Upload([]int{len(xv)}, xv)))
			got := readT(t, g, g.Unary(op, g.Upload([]int{len(xv)}, xv)))
			for i, v := range got {
				require.False(t, math.IsNaN(float64(v)), "%s(%v) is NaN", op, xv[i])
			}
			tol := unaryTol[op]
			requireClose(t, want, got, tol[0], tol[1], op.String())
		})
	}
}

func TestGEGLUMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for i, shape := range [][]int{{2}, {3, 14}, {2, 77, 2 * 77}, {1, 3, 2 * 4095}} {
		t.Run(fmt.Sprint(shape), func(t *testing.T) {
			xv := offsetBy(randn(uint64(i+3), numel(shape)), 0, 2)
			want := readT(t, c, c.GEGLU(c.Upload(shape, xv)))
			got := readT(t, g, g.GEGLU(g.Upload(shape, xv)))
			requireClose(t, want, got, 1e-7, 4e-6, "geglu")
		})
	}
}

// Axpby, Affine, Clamp: one rounding each, but a GPU may fuse a·x + b into
// an FMA, so |diff| ≤ 1e-6·|want| + 1e-7.
func TestAxpbyAffineClamp(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for i, shape := range [][]int{{1}, {7}, {4095}, {2, 3, 77}} {
		xv, yv := randn(uint64(i), numel(shape)), randn(uint64(i+50), numel(shape))
		ops := map[string]func(be Backend) *Tensor{
			"axpby":   func(be Backend) *Tensor { return be.Axpby(0.7, be.Upload(shape, xv), -1.3, be.Upload(shape, yv)) },
			"affine":  func(be Backend) *Tensor { return be.Affine(be.Upload(shape, xv), 0.18215, -0.5) },
			"clamp":   func(be Backend) *Tensor { return be.Clamp(be.Upload(shape, xv), -0.5, 0.75) },
			"clamp>":  func(be Backend) *Tensor { return be.Clamp(be.Upload(shape, xv), 1, -1) }, // lo > hi: hi
			"permute": func(be Backend) *Tensor { return be.Permute(be.Upload(shape, xv), permRev(len(shape))...) },
		}
		for name, f := range ops {
			t.Run(fmt.Sprintf("%s/%v", name, shape), func(t *testing.T) {
				requireClose(t, readT(t, c, f(c)), readT(t, g, f(g)), 1e-7, 1e-6, name)
			})
		}
	}
}

func permRev(r int) []int {
	p := make([]int, r)
	for i := range p {
		p[i] = r - 1 - i
	}
	return p
}

// TestElementwiseBindLimit forces 1024 floats per binding so every
// elementwise op runs in chunks, on a view at an unaligned offset.
func TestElementwiseBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 4096
	n := 5002
	xv, yv := randn(1, n+3), randn(2, n)
	view := func(be Backend) *Tensor { return Reshape(Narrow(be.Upload([]int{n + 3}, xv), 3, n), 2, n/2) }
	ops := map[string]func(be Backend) *Tensor{
		"gelu":   func(be Backend) *Tensor { return be.Unary(GELU, view(be)) },
		"tanh":   func(be Backend) *Tensor { return be.Unary(Tanh, view(be)) },
		"axpby":  func(be Backend) *Tensor { return be.Axpby(2, view(be), 3, be.Upload([]int{2, n / 2}, yv)) },
		"affine": func(be Backend) *Tensor { return be.Affine(view(be), 2, 1) },
		"clamp":  func(be Backend) *Tensor { return be.Clamp(view(be), -1, 1) },
		"geglu":  func(be Backend) *Tensor { return be.GEGLU(Reshape(view(be), 61, 82)) },
	}
	for name, f := range ops {
		t.Run(name, func(t *testing.T) {
			requireClose(t, readT(t, c, f(c)), readT(t, g, f(g)), 1e-7, 4e-6, name)
		})
	}
	g.BindLimit = 4 * 100
	require.Nil(t, g.GEGLU(g.Upload([]int{2, 202}, make([]float32, 404))))
	require.ErrorContains(t, g.Err(), "nn: geglu: a row of x f32[2 202] exceeds maxStorageBufferBindingSize")
}

func TestElementwiseErrors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		x := be.Upload([]int{2, 3}, make([]float32, 6))
		require.Nil(t, be.Axpby(1, x, 1, be.Upload([]int{3, 2}, make([]float32, 6))))
		require.ErrorContains(t, be.Err(), "nn: axpby: f32[2 3] and f32[3 2] differ in shape")
		be.ClearErr()
		require.Nil(t, be.GEGLU(be.Upload([]int{2, 5}, make([]float32, 10))))
		require.ErrorContains(t, be.Err(), "nn: geglu: x f32[2 5]: last axis 5 is odd")
		be.ClearErr()
		require.Nil(t, be.Unary(UnaryOp(99), x))
		require.ErrorContains(t, be.Err(), "unknown op 99")
		be.ClearErr()
		require.Nil(t, be.Unary(GELU, be.UploadF16([]int{2}, []uint16{0, 0})))
		require.ErrorContains(t, be.Err(), "nn: gelu: needs f32 tensors, got f16[2]")
		be.ClearErr()
		require.Nil(t, be.Unary(SiLU, nil))
		require.ErrorContains(t, be.Err(), "nil tensor")
		be.ClearErr()
	}
}

func TestPermuteMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	cases := []struct {
		shape, perm []int
	}{
		{[]int{1}, []int{0}},
		{[]int{7, 3}, []int{1, 0}},
		{[]int{2, 3, 4}, []int{0, 2, 1}},
		{[]int{2, 3, 4}, []int{1, 2, 0}},
		{[]int{2, 3, 4}, []int{2, 0, 1}},
		{[]int{2, 3, 4}, []int{2, 1, 0}},
		{[]int{2, 77, 5, 3}, []int{0, 2, 3, 1}},
		{[]int{2, 5, 3, 77}, []int{0, 3, 1, 2}},
		{[]int{2, 1, 3, 1, 4, 5}, []int{4, 1, 0, 5, 3, 2}},
		{[]int{2, 1, 2, 3, 1, 2, 2, 3}, []int{7, 0, 5, 1, 3, 2, 6, 4}},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%v/%v", tc.shape, tc.perm), func(t *testing.T) {
			xv := randn(uint64(i), numel(tc.shape))
			want := c.Permute(c.Upload(tc.shape, xv), tc.perm...)
			got := g.Permute(g.Upload(tc.shape, xv), tc.perm...)
			requireClose(t, readT(t, c, want), readT(t, g, got), 0, 0, "permute")
			require.Equal(t, want.Shape(), got.Shape())
		})
	}
	// the reference itself on a small case
	x := c.Upload([]int{2, 3}, []float32{0, 1, 2, 3, 4, 5})
	require.Equal(t, []float32{0, 3, 1, 4, 2, 5}, readT(t, c, c.Permute(x, 1, 0)))
}

// TestPermuteBindLimit splits x and the output into boxes of rows that fit
// 1024 floats.
func TestPermuteBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 4096
	cases := []struct{ shape, perm []int }{
		{[]int{40, 30, 7}, []int{1, 0, 2}},
		{[]int{40, 30, 7}, []int{2, 1, 0}},
		{[]int{40, 30, 7}, []int{0, 2, 1}},
		{[]int{9, 20, 30}, []int{2, 0, 1}},
		{[]int{30, 1, 50, 4}, []int{0, 3, 2, 1}},
		{[]int{2, 2000}, []int{1, 0}},       // rows of 2000 > 1024: one index at a time
		{[]int{3, 2, 1100}, []int{2, 0, 1}}, // the output's rows too
		{[]int{2, 3, 4, 5, 6, 7}, []int{5, 3, 1, 0, 2, 4}},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%v/%v", tc.shape, tc.perm), func(t *testing.T) {
			n := numel(tc.shape)
			xv := randn(uint64(i), n+1)
			want := c.Permute(Reshape(Narrow(c.Upload([]int{n + 1}, xv), 1, n), tc.shape...), tc.perm...)
			got := g.Permute(Reshape(Narrow(g.Upload([]int{n + 1}, xv), 1, n), tc.shape...), tc.perm...)
			requireClose(t, readT(t, c, want), readT(t, g, got), 0, 0, "permute split")
		})
	}
}

func TestPermuteErrors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		x := be.Upload([]int{2, 3, 4}, make([]float32, 24))
		for _, tc := range []struct {
			perm []int
			msg  string
		}{
			{[]int{0, 1}, "nn: permute: perm [0 1] has 2 axes, x f32[2 3 4] has 3"},
			{[]int{0, 1, 1}, "perm [0 1 1] is not a permutation of the 3 axes of x f32[2 3 4]"},
			{[]int{0, 3, 1}, "is not a permutation"},
			{[]int{-1, 0, 1}, "is not a permutation"},
		} {
			require.Nil(t, be.Permute(x, tc.perm...))
			require.ErrorContains(t, be.Err(), tc.msg)
			be.ClearErr()
		}
	}
}

// TimestepEmbedding: both sides compute exp(exponent) in float32, but the
// GPU's exp may differ from Go's by an ulp, which shifts t·freq by up to
// ~1.2e-7·t before sin/cos: |diff| ≤ 2e-7·max(t)+1e-6.
func TestTimestepEmbedding(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	ts := []float32{0, 1, 10.5, 500.25, 981, 999}
	cases := []struct {
		dim   int
		flip  bool
		shift float32
		scale float32
	}{
		{320, true, 0, 1}, // SD 1.x UNet
		{320, false, 1, 1},
		{7, false, 1, 1}, // odd: zero column
		{1, true, 1, 1},
		{256, true, 0, 1000}, // scaled
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d/%v/%v/%v", tc.dim, tc.flip, tc.shift, tc.scale), func(t *testing.T) {
			want := readT(t, c, c.TimestepEmbedding(c.Upload([]int{len(ts)}, ts), tc.dim, tc.flip, tc.shift, tc.scale, 10000))
			got := readT(t, g, g.TimestepEmbedding(g.Upload([]int{len(ts)}, ts), tc.dim, tc.flip, tc.shift, tc.scale, 10000))
			requireClose(t, want, got, 2e-7*999*float64(tc.scale)+1e-6, 0, "timestep")
			if tc.dim%2 == 1 {
				require.Equal(t, float32(0), got[tc.dim-1])
			}
		})
	}
	// the reference against values from the formula: t=981, dim 4, no flip,
	// shift 1: half 2, freqs [1, 1e-4^(1/1)], emb [981, 0.0981].
	ref := readT(t, c, c.TimestepEmbedding(c.Upload([]int{1}, []float32{981}), 4, false, 1, 1, 10000))
	requireClose(t, []float32{float32(math.Sin(981)), float32(math.Sin(0.0981)), float32(math.Cos(981)), float32(math.Cos(0.0981))}, ref, 1e-6, 0, "formula")

	for _, be := range []Backend{c, g} {
		require.Nil(t, be.TimestepEmbedding(be.Upload([]int{2, 1}, []float32{1, 2}), 8, false, 1, 1, 10000))
		require.ErrorContains(t, be.Err(), "nn: timestep_embedding: timesteps f32[2 1] must be [B]")
		be.ClearErr()
		require.Nil(t, be.TimestepEmbedding(be.Upload([]int{2}, []float32{1, 2}), 0, false, 1, 1, 10000))
		require.ErrorContains(t, be.Err(), "dim 0 must be positive")
		be.ClearErr()
	}
}

// sumAbs is Σ|v|, the scale of a sum's float32 rounding error.
func sumAbs(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += math.Abs(float64(x))
	}
	return s
}

// Reduce/SquaredError: float32 per-workgroup partials combined in a tree
// vs a float64 sum: |diff| ≤ 1e-6·Σ|terms| (mean: divided by n); MaxAbs is
// exact.
func TestReduceMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for i, n := range []int{1, 3, 7, 77, 4095, 4096*5 + 3, 300001} {
		xv := offsetBy(randn(uint64(i), n), 0.5, 2)
		yv := randn(uint64(i+9), n)
		d := make([]float32, n)
		for j := range d {
			d[j] = (xv[j] - yv[j]) * (xv[j] - yv[j])
		}
		tol := map[string]float64{"sum": 1e-6 * sumAbs(xv), "mean": 1e-6 * sumAbs(xv) / float64(n), "max_abs": 0, "squared_error": 1e-6 * sumAbs(d)}
		ops := map[string]func(be Backend) *Tensor{
			"sum":           func(be Backend) *Tensor { return be.Reduce(Sum, be.Upload([]int{n}, xv)) },
			"mean":          func(be Backend) *Tensor { return be.Reduce(Mean, be.Upload([]int{n}, xv)) },
			"max_abs":       func(be Backend) *Tensor { return be.Reduce(MaxAbs, be.Upload([]int{n}, xv)) },
			"squared_error": func(be Backend) *Tensor { return be.SquaredError(be.Upload([]int{n}, xv), be.Upload([]int{n}, yv)) },
		}
		for name, f := range ops {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				got := f(g)
				require.Equal(t, []int{1}, got.Shape())
				requireClose(t, readT(t, c, f(c)), readT(t, g, got), tol[name], 0, name)
			})
		}
	}
}

func TestReduceBindLimit(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 4096
	n := 10007
	xv, yv := randn(1, n+2), randn(2, n)
	view := func(be Backend) *Tensor { return Reshape(Narrow(be.Upload([]int{n + 2}, xv), 2, n), n) }
	for _, op := range []ReduceOp{Sum, Mean, MaxAbs} {
		want := readT(t, c, c.Reduce(op, view(c)))
		got := readT(t, g, g.Reduce(op, view(g)))
		requireClose(t, want, got, 1e-6*sumAbs(xv), 0, op.String())
	}
	want := readT(t, c, c.SquaredError(view(c), c.Upload([]int{n}, yv)))
	got := readT(t, g, g.SquaredError(view(g), g.Upload([]int{n}, yv)))
	requireClose(t, want, got, 1e-6*float64(want[0])*4, 0, "squared_error")

	for _, be := range []Backend{c, g} {
		require.Nil(t, be.SquaredError(be.Upload([]int{3}, make([]float32, 3)), be.Upload([]int{4}, make([]float32, 4))))
		require.ErrorContains(t, be.Err(), "nn: squared_error: f32[3] and f32[4] differ in shape")
		be.ClearErr()
		require.Nil(t, be.Reduce(ReduceOp(7), be.Upload([]int{3}, make([]float32, 3))))
		require.ErrorContains(t, be.Err(), "unknown op 7")
		be.ClearErr()
	}
}

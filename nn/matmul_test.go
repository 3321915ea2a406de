package nn

import (
	"fmt"
	"testing"

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
				require.Equal(t, append(cloneShape(tc.x[:len(tc.x)-1]), tc.out), gy.Shape())
				want, got := readT(t, c, cy), readT(t, g, gy)
				requireClose(t, want, got, 1e-4, 1e-4, fmt.Sprintf("%+v", tc))
			})
		}
	}
}

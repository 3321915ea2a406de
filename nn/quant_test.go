package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func relL2(want, got []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	return math.Sqrt(num / math.Max(den, 1e-30))
}

func TestQuantRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		f      DType
		shape  []int
		group  int
		maxRel float64 // relative L2 error bound for standard-normal data
	}{
		{Q8, []int{3, 27}, 0, 0.01},
		{Q8, []int{7, 77}, 0, 0.01},
		{Q8, []int{5, 3, 3, 3}, 0, 0.01},
		{Q8, []int{4, 128}, 32, 0.01},
		{Q8, []int{3, 77}, 64, 0.01},
		{Q4, []int{3, 77}, 32, 0.10},
		{Q4, []int{4, 256}, 64, 0.12},
		{Q4, []int{2, 320, 3, 3}, 128, 0.14},
		{Q4, []int{1, 5}, 32, 0.10},
	} {
		t.Run(fmt.Sprintf("%v_%v_g%d", tc.f, tc.shape, tc.group), func(t *testing.T) {
			v := randn(7, numel(tc.shape))
			q, err := Quantize(tc.f, tc.shape, v, tc.group)
			require.NoError(t, err)
			dq := q.Dequantize()
			require.Less(t, relL2(v, dq), tc.maxRel)
			// Per element: at most half a step of the group (plus f16
			// rounding of the scale), except q4 values outside the
			// group's levels (the search may clip the range).
			rl := q.RowLen()
			for i, x := range v {
				si := (i/rl)*q.Groups() + (i%rl)/q.Group
				var step float64
				if tc.f == Q8 {
					step = float64(Float16To32(uint16(q.Scales[si/2] >> (16 * (si % 2)))))
				} else {
					step = float64(Float16To32(uint16(q.Scales[si])))
					m := float64(Float16To32(uint16(q.Scales[si] >> 16)))
					if float64(x) < m || float64(x) > m+15*step {
						continue
					}
				}
				require.LessOrEqual(t, math.Abs(float64(dq[i]-x)), 0.5*step*1.01+1e-3*math.Abs(float64(x))+1e-6, "element %d", i)
			}
			b := q.Encode()
			require.Equal(t, q.Bytes(), len(b))
			q2, err := DecodeQuant(q.Format, q.Shape, q.Group, b)
			require.NoError(t, err)
			require.Equal(t, q.Data, q2.Data)
			require.Equal(t, q.Scales, q2.Scales)
			_, err = DecodeQuant(q.Format, q.Shape, q.Group, b[:len(b)-4])
			require.ErrorContains(t, err, "bytes, want")
		})
	}
	// Constant groups (zero range) dequantize exactly.
	q, err := Quantize(Q4, []int{2, 8}, []float32{1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, 8)
	require.NoError(t, err)
	require.Equal(t, []float32{1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, q.Dequantize())
}

// The q4 range search is never worse than min/max per group: each group's
// squared error is at most the min/max quantizer's.
func TestQuantQ4Search(t *testing.T) {
	for _, g := range []int{8, 32, 64, 128} {
		v := randn(11, 9*300)
		for i := range v {
			v[i] = v[i] * v[i] * v[i] // heavy tails: clipping pays
		}
		q, err := Quantize(Q4, []int{9, 300}, v, g)
		require.NoError(t, err)
		Q4Search = -1
		q0, err := Quantize(Q4, []int{9, 300}, v, g)
		Q4Search = 4
		require.NoError(t, err)
		dq, dq0 := q.Dequantize(), q0.Dequantize()
		for r := 0; r < 9; r++ {
			for k0 := 0; k0 < 300; k0 += g {
				var e, e0 float64
				for k := k0; k < min(k0+g, 300); k++ {
					i := r*300 + k
					e += math.Pow(float64(dq[i]-v[i]), 2)
					e0 += math.Pow(float64(dq0[i]-v[i]), 2)
				}
				require.LessOrEqual(t, e, e0*(1+1e-9), "row %d group %d", r, k0/g)
			}
		}
		t.Logf("g%d: rel L2 %.4f (min/max %.4f)", g, relL2(v, dq), relL2(v, dq0))
		require.Less(t, relL2(v, dq), 0.9*relL2(v, dq0))
	}
}

func TestQuantErrors(t *testing.T) {
	_, err := Quantize(Q4, []int{2, 16}, make([]float32, 32), 12)
	require.ErrorContains(t, err, "multiple of 8")
	_, err = Quantize(Q8, []int{2, 16}, make([]float32, 32), 6)
	require.ErrorContains(t, err, "multiple of 4")
	_, err = Quantize(F16, []int{2, 16}, make([]float32, 32), 8)
	require.ErrorContains(t, err, "not q8 or q4")
	_, err = Quantize(Q8, []int{2, 16}, make([]float32, 31), 8)
	require.ErrorContains(t, err, "31 values")
	c := NewCPU()
	require.Nil(t, UploadQuant(c, &QuantTensor{Format: Q8, Shape: []int{2, 4}, Group: 4}))
	require.ErrorContains(t, c.Err(), "upload_quant")
}

// quantPair uploads the same quantized weight to the GPU and the reference.
func quantPair(t *testing.T, g *GPU, c *CPU, f DType, shape []int, group int, seed uint64) (*Tensor, *Tensor) {
	q, err := Quantize(f, shape, randn(seed, numel(shape)), group)
	require.NoError(t, err)
	wg, wc := UploadQuant(g, q), UploadQuant(c, q)
	require.NoError(t, g.Err())
	require.Equal(t, q.Format, wg.DType())
	require.Equal(t, q.Dequantize(), readT(t, c, wc))
	return wg, wc
}

func TestLinearQuant(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, tc := range []struct {
		f     DType
		group int
		x     []int
		n     int
		bias  DType // F32, F16, or 255 for none
	}{
		{Q8, 0, []int{1, 77}, 3, F32},
		{Q8, 0, []int{2, 3, 77}, 77, 255},
		{Q8, 32, []int{5, 64}, 65, F16},
		{Q8, 4, []int{7, 13}, 9, F32},
		{Q4, 32, []int{1, 77}, 1, 255},
		{Q4, 32, []int{2, 3, 77}, 77, F32},
		{Q4, 64, []int{9, 320}, 70, F16},
		{Q4, 128, []int{4, 1280}, 33, F32},
		{Q4, 8, []int{3, 7}, 5, F32},
	} {
		t.Run(fmt.Sprintf("%v_g%d_%v_n%d", tc.f, tc.group, tc.x, tc.n), func(t *testing.T) {
			k := tc.x[len(tc.x)-1]
			wg, wc := quantPair(t, g, c, tc.f, []int{tc.n, k}, tc.group, 3)
			xv := randn(4, numel(tc.x))
			xg, xc := g.Upload(tc.x, xv), c.Upload(tc.x, xv)
			var bg, bc *Tensor
			switch tc.bias {
			case F32:
				bv := randn(5, tc.n)
				bg, bc = g.Upload([]int{tc.n}, bv), c.Upload([]int{tc.n}, bv)
			case F16:
				bits := make([]uint16, tc.n)
				for i, v := range randn(5, tc.n) {
					bits[i] = Float16(v)
				}
				bg, bc = g.UploadF16([]int{tc.n}, bits), c.UploadF16([]int{tc.n}, bits)
			}
			want := readT(t, c, c.Linear(xc, wc, bc))
			got := readT(t, g, g.Linear(xg, wg, bg))
			requireClose(t, want, got, 1e-4, 1e-4, "linear quant")
		})
	}
	t.Run("bindlimit", func(t *testing.T) {
		g2 := NewGPU(g.Dev)
		g2.BindLimit = 8192 // 2048 elements: x rows are split 26 per dispatch
		wg, wc := quantPair(t, g2, c, Q4, []int{70, 77}, 32, 8)
		xv := randn(9, 100*77)
		want := readT(t, c, c.Linear(c.Upload([]int{100, 77}, xv), wc, nil))
		got := readT(t, g2, g2.Linear(g2.Upload([]int{100, 77}, xv), wg, nil))
		requireClose(t, want, got, 1e-4, 1e-4, "linear quant split")
		g2.BindLimit = 64
		g2.Linear(g2.Upload([]int{1, 77}, xv[:77]), wg, nil)
		require.ErrorContains(t, g2.Err(), "exceeds maxStorageBufferBindingSize")
	})
	t.Run("errors", func(t *testing.T) {
		g2 := NewGPU(g.Dev)
		wg, _ := quantPair(t, g2, c, Q8, []int{4, 8}, 0, 8)
		g2.Linear(g2.Upload([]int{1, 7}, make([]float32, 7)), wg, nil)
		require.ErrorContains(t, g2.Err(), "expects 8 input features")
	})
}

func TestConv2dQuant(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, tc := range []struct {
		f         DType
		group     int
		x         []int
		cout, k   int
		p         Conv2dParams
		bias      bool
		bindLimit uint64
	}{
		{Q8, 0, []int{1, 3, 9, 7}, 5, 3, Conv2dSame(1, 1), true, 0},
		{Q8, 32, []int{2, 8, 6, 6}, 7, 3, Conv2dSame(2, 1), false, 0},
		{Q8, 0, []int{2, 5, 4, 3}, 9, 1, Conv2dSame(1, 0), true, 0},
		{Q4, 32, []int{1, 4, 9, 7}, 6, 3, Conv2dSame(1, 1), true, 0},
		{Q4, 64, []int{2, 16, 5, 5}, 9, 3, Conv2dParams{StrideH: 2, StrideW: 2, PadBottom: 1, PadRight: 1}, false, 0},
		{Q4, 128, []int{1, 32, 4, 4}, 3, 1, Conv2dSame(1, 0), true, 0},
		{Q4, 32, []int{2, 6, 9, 9}, 10, 3, Conv2dSame(1, 1), true, 1024}, // split: channel groups, out channels
		{Q8, 0, []int{3, 6, 5, 5}, 10, 3, Conv2dSame(1, 1), true, 4096},  // split: samples
	} {
		t.Run(fmt.Sprintf("%v_g%d_%v_co%d_k%d_lim%d", tc.f, tc.group, tc.x, tc.cout, tc.k, tc.bindLimit), func(t *testing.T) {
			g2 := NewGPU(g.Dev)
			g2.BindLimit = tc.bindLimit
			wg, wc := quantPair(t, g2, c, tc.f, []int{tc.cout, tc.x[1], tc.k, tc.k}, tc.group, 11)
			xv := randn(12, numel(tc.x))
			var bg, bc *Tensor
			if tc.bias {
				bv := randn(13, tc.cout)
				bg, bc = g2.Upload([]int{tc.cout}, bv), c.Upload([]int{tc.cout}, bv)
			}
			want := readT(t, c, c.Conv2d(c.Upload(tc.x, xv), wc, bc, tc.p))
			got := readT(t, g2, g2.Conv2d(g2.Upload(tc.x, xv), wg, bg, tc.p))
			requireClose(t, want, got, 1e-4, 1e-4, "conv2d quant")
		})
	}
}

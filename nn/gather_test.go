package nn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestGatherMatchesReference(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, tc := range []struct {
		v, d int
		ids  []int
		f16  bool
	}{
		{1, 1, []int{0}, false},
		{1000, 32, []int{0, 999, 5, 5, 2}, false},
		{77, 7, []int{76, 3, 0}, true},
		{49, 3, []int{48}, true},
	} {
		vals := randn(uint64(tc.v), tc.v*tc.d)
		var ct, gt *Tensor
		if tc.f16 {
			bits := make([]uint16, len(vals))
			for i, x := range vals {
				bits[i] = Float16(x)
			}
			ct, gt = c.UploadF16([]int{tc.v, tc.d}, bits), g.UploadF16([]int{tc.v, tc.d}, bits)
		} else {
			ct, gt = c.Upload([]int{tc.v, tc.d}, vals), g.Upload([]int{tc.v, tc.d}, vals)
		}
		want := readT(t, c, c.Gather(ct, tc.ids))
		got := readT(t, g, g.Gather(gt, tc.ids))
		requireClose(t, want, got, 0, 0, "gather")
	}
}

func TestGatherErrors(t *testing.T) {
	for _, be := range []Backend{NewCPU(), testGPU(t)} {
		tab := be.Upload([]int{4, 2}, make([]float32, 8))
		require.Nil(t, be.Gather(tab, []int{4}))
		require.ErrorContains(t, be.Err(), "outside the table's 4 rows")
		be.ClearErr()
		require.Nil(t, be.Gather(tab, nil))
		require.ErrorContains(t, be.Err(), "no ids")
		be.ClearErr()
	}
}

func TestGatherRowsOfLargeTable(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	g.BindLimit = 1024 // 256 floats
	vals := randn(9, 100*8)
	ids := []int{50, 52, 51}
	want := readT(t, c, c.Gather(c.Upload([]int{100, 8}, vals), ids))
	got := readT(t, g, g.Gather(g.Upload([]int{100, 8}, vals), ids))
	requireClose(t, want, got, 0, 0, "gather sub-range")
}

// Quantized embedding tables: the GPU gathers and dequantizes rows; the
// reference holds the dequantized table.
func TestGatherQuantized(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, tc := range []struct {
		f     DType
		group int
	}{{Q8, 40}, {Q8, 8}, {Q4, 8}, {Q4, 16}} {
		vals := randn(uint64(tc.group), 37*40)
		q, err := Quantize(tc.f, []int{37, 40}, vals, tc.group)
		require.NoError(t, err)
		ids := []int{36, 0, 5, 5, 17}
		want := readT(t, c, c.Gather(UploadQuant(c, q), ids))
		got := readT(t, g, g.Gather(UploadQuant(g, q), ids))
		requireClose(t, want, got, 1e-6, 1e-6, tc.f.String())
	}
}

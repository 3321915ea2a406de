package nn

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The 1×1 fast path (GEMM + permute) matches the reference for batch > 1,
// odd sizes, f16 weights and bias, with and without bias.
func TestConv2d1x1FastPath(t *testing.T) {
	g, c := testGPU(t), NewCPU()
	for _, tc := range []struct {
		n, cin, cout, h, w int
		f16, bias          bool
	}{{2, 7, 5, 3, 9, false, true}, {1, 320, 77, 8, 8, true, true}, {3, 4, 4, 1, 1, false, false}, {2, 33, 17, 5, 7, true, false}} {
		xv, wv, bv := randn(1, tc.n*tc.cin*tc.h*tc.w), randn(2, tc.cout*tc.cin), randn(3, tc.cout)
		up := func(be Backend) (*Tensor, *Tensor, *Tensor) {
			x := be.Upload([]int{tc.n, tc.cin, tc.h, tc.w}, xv)
			var w, b *Tensor
			if tc.f16 {
				bits := make([]uint16, len(wv))
				for i, v := range wv {
					bits[i] = Float16(v)
				}
				w = be.UploadF16([]int{tc.cout, tc.cin, 1, 1}, bits)
			} else {
				w = be.Upload([]int{tc.cout, tc.cin, 1, 1}, wv)
			}
			if tc.bias {
				b = be.Upload([]int{tc.cout}, bv)
			}
			return x, w, b
		}
		cx, cw, cb := up(c)
		gx, gw, gb := up(g)
		want := readT(t, c, c.Conv2d(cx, cw, cb, Conv2dSame(1, 0)))
		out, ok := g.conv1x1(gx, gw, gb, Conv2dSame(1, 0))
		require.True(t, ok, "fast path taken")
		requireClose(t, want, readT(t, g, out), 1e-4, 1e-4, "conv 1x1")
	}
}

package nn

import (
	"fmt"
)

func init() {
	registerBench(
		conv2dBench(320, 320, 64, 64, 3, Conv2dSame(1, 1)),
		conv2dBench(320, 320, 64, 64, 1, Conv2dSame(1, 0)),
		conv2dBench(320, 320, 64, 64, 3, Conv2dSame(2, 1)),
		BenchCase{
			Op: "upsample2x", Shape: "1x320x64x64",
			Setup: func(be Backend) (func() *Tensor, func()) {
				x := be.Upload([]int{1, 320, 64, 64}, benchData(1, 320*64*64))
				return func() *Tensor { return be.Upsample2x(x) }, func() { Free(x) }
			},
		},
	)
}

// benchData returns n uniform values in [-1, 1) from a fixed seed.
// conv2dBench is a batch-1 k×k Conv2d with bias, cin→cout at h×w;
// FLOPs = 2·Cout·Cin·k²·OH·OW.
func conv2dBench(cin, cout, h, w, k int, p Conv2dParams) BenchCase {
	oh, ow := p.OutSize(h, w, k, k)
	return BenchCase{
		Op:    "conv2d",
		Shape: fmt.Sprintf("%dx%d s%d %d->%d %dx%d", k, k, p.StrideH, cin, cout, h, w),
		FLOPs: 2 * float64(cout*cin*k*k*oh*ow),
		Setup: func(be Backend) (func() *Tensor, func()) {
			x := be.Upload([]int{1, cin, h, w}, benchData(1, cin*h*w))
			wt := be.Upload([]int{cout, cin, k, k}, benchData(2, cout*cin*k*k))
			b := be.Upload([]int{cout}, benchData(3, cout))
			return func() *Tensor { return be.Conv2d(x, wt, b, p) }, func() { Free(x, wt, b) }
		},
	}
}

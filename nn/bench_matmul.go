package nn

import (
	"fmt"
)

func init() {
	registerBench(
		matmulBench(512, 512, 512),
		matmulBench(1024, 1024, 1024),
		linearBench(4096, 320, 1280, false), // SD 1.5 attention/FF shapes at 64×64 latents
		linearBench(4096, 320, 1280, true),
	)
}

// benchData returns n uniform values in [-1, 1) from a fixed seed.
// matmulBench times MatMul of [m, k] by [k, n].
func matmulBench(m, k, n int) BenchCase {
	return BenchCase{
		Op:    "matmul",
		Shape: fmt.Sprintf("%dx%dx%d", m, k, n),
		FLOPs: 2 * float64(m) * float64(k) * float64(n),
		Setup: func(be Backend) (func() *Tensor, func()) {
			a := be.Upload([]int{m, k}, benchData(1, m*k))
			b := be.Upload([]int{k, n}, benchData(2, k*n))
			return func() *Tensor { return be.MatMul(a, b, false, false) }, func() { Free(a, b) }
		},
	}
}

// linearBench times Linear of x [rows, in] with w [out, in] (f32 or f16)
// and a bias.
func linearBench(rows, in, out int, f16 bool) BenchCase {
	shape := fmt.Sprintf("%dx%d->%d", rows, in, out)
	if f16 {
		shape += ",f16"
	}
	return BenchCase{
		Op:    "linear",
		Shape: shape,
		FLOPs: 2 * float64(rows) * float64(in) * float64(out),
		Setup: func(be Backend) (func() *Tensor, func()) {
			x := be.Upload([]int{rows, in}, benchData(3, rows*in))
			wv := benchData(4, out*in)
			var w *Tensor
			if f16 {
				h := make([]uint16, len(wv))
				for i, v := range wv {
					h[i] = Float16(v)
				}
				w = be.UploadF16([]int{out, in}, h)
			} else {
				w = be.Upload([]int{out, in}, wv)
			}
			bias := be.Upload([]int{out}, benchData(5, out))
			return func() *Tensor { return be.Linear(x, w, bias) }, func() { Free(x, w, bias) }
		},
	}
}

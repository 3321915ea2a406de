package nn

// Normalisation benchmarks at Stable Diffusion 1.x sizes (512×512 images,
// batch 2 for classifier-free guidance).
func init() {
	registerBench(
		BenchCase{
			Op: "groupnorm", Shape: "2x320x64x64/g32/silu",
			Setup: func(be Backend) (func() *Tensor, func()) {
				shape := []int{2, 320, 64, 64}
				x := be.Upload(shape, normBenchData(numel(shape)))
				gm := be.Upload([]int{320}, normBenchData(320))
				bt := be.Upload([]int{320}, normBenchData(320))
				return func() *Tensor { return be.GroupNorm(x, gm, bt, 32, 1e-5, true) },
					func() { Free(x, gm, bt) }
			},
		},
		BenchCase{
			Op: "layernorm", Shape: "2x4096x320",
			Setup: func(be Backend) (func() *Tensor, func()) {
				shape := []int{2, 4096, 320}
				x := be.Upload(shape, normBenchData(numel(shape)))
				gm := be.Upload([]int{320}, normBenchData(320))
				bt := be.Upload([]int{320}, normBenchData(320))
				return func() *Tensor { return be.LayerNorm(x, gm, bt, 1e-5) },
					func() { Free(x, gm, bt) }
			},
		},
		BenchCase{
			Op: "softmax", Shape: "16x4096x77",
			Setup: func(be Backend) (func() *Tensor, func()) {
				shape := []int{16, 4096, 77}
				x := be.Upload(shape, normBenchData(numel(shape)))
				return func() *Tensor { return be.Softmax(x) }, func() { Free(x) }
			},
		},
	)
}

// normBenchData returns n deterministic values in [-2, 2).
func normBenchData(n int) []float32 {
	v := make([]float32, n)
	s := uint32(12345)
	for i := range v {
		s = s*1664525 + 1013904223
		v[i] = float32(s>>8)/float32(1<<24)*4 - 2
	}
	return v
}

package nn

// Normalisation benchmarks at Stable Diffusion 1.x sizes (512×512 images,
// batch 2 for classifier-free guidance).
func init() {
	registerBench(
		BenchCase{
			Op: "groupnorm", Shape: "2x320x64x64/g32/silu",
			Setup: func(be Backend) (func() *Tensor, func()) {
				shape := []int{2, 320, 64, 64}
				x := be.Upload(shape, benchData(1, numel(shape)))
				gm := be.Upload([]int{320}, benchData(2, 320))
				bt := be.Upload([]int{320}, benchData(2, 320))
				return func() *Tensor { return be.GroupNorm(x, gm, bt, 32, 1e-5, true) },
					func() { Free(x, gm, bt) }
			},
		},
		BenchCase{
			Op: "layernorm", Shape: "2x4096x320",
			Setup: func(be Backend) (func() *Tensor, func()) {
				shape := []int{2, 4096, 320}
				x := be.Upload(shape, benchData(1, numel(shape)))
				gm := be.Upload([]int{320}, benchData(2, 320))
				bt := be.Upload([]int{320}, benchData(2, 320))
				return func() *Tensor { return be.LayerNorm(x, gm, bt, 1e-5) },
					func() { Free(x, gm, bt) }
			},
		},
		BenchCase{
			Op: "softmax", Shape: "16x4096x77",
			Setup: func(be Backend) (func() *Tensor, func()) {
				shape := []int{16, 4096, 77}
				x := be.Upload(shape, benchData(1, numel(shape)))
				return func() *Tensor { return be.Softmax(x) }, func() { Free(x) }
			},
		},
	)
}

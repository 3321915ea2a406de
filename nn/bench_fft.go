package nn

// FFT benchmark at the Tree-Ring latent size (SD 1.x: 4×64×64), complex
// input, counting the usual 5·N·log2 N flops per N-point transform.
func init() {
	registerBench(BenchCase{
		Op: "fft2", Shape: "1x4x64x64", FLOPs: 4 * 5 * 4096 * 12,
		Setup: func(be Backend) (func() *Tensor, func()) {
			shape := []int{1, 4, 64, 64}
			re := be.Upload(shape, benchData(1, numel(shape)))
			im := be.Upload(shape, benchData(2, numel(shape)))
			return func() *Tensor {
					r, i := FFT2(be, re, im, false)
					Free(i)
					return r
				},
				func() { Free(re, im) }
		},
	})
}

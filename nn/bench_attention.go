package nn

import (
	"fmt"
	"math"
)

func init() {
	// SD-1.5 UNet attention at 512×512 (64×64 latents, first level: 320
	// channels, 8 heads of 40): self-attention over 4096 tokens, and
	// cross-attention to the 77 CLIP tokens for the CFG batch of 2. Peak GPU
	// memory should stay near q+k+v+out (a materialised 8×4096×4096 score
	// tensor alone would be 512 MiB).
	registerBench(
		attnBench(1, 4096, 4096, 8, 40, false),
		attnBench(2, 4096, 77, 8, 40, false),
	)
}

func attnBench(b, lq, lk, h, d int, cpuSkip bool) BenchCase {
	return BenchCase{
		Op:      "attention",
		Shape:   fmt.Sprintf("%dx%dx%d_lk%d_h%d", b, lq, h*d, lk, h),
		FLOPs:   4 * float64(b*h*lq*lk*d),
		CPUSkip: cpuSkip,
		Setup: func(be Backend) (func() *Tensor, func()) {
			qs, ks := []int{b, lq, h * d}, []int{b, lk, h * d}
			q := be.Upload(qs, benchData(1, numel(qs)))
			k := be.Upload(ks, benchData(2, numel(ks)))
			v := be.Upload(ks, benchData(3, numel(ks)))
			scale := float32(1 / math.Sqrt(float64(d)))
			return func() *Tensor { return be.Attention(q, k, v, h, scale, false) },
				func() { Free(q, k, v) }
		},
	}
}

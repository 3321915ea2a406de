//go:build !(goexperiment.simd && amd64)

package nn

// The reference product's register block without SIMD: two rows by four
// columns is the largest block whose accumulators and operands stay in
// amd64's 15 usable float registers (measured fastest of 2×4, 2×6, 3×4, 4×4).
const (
	gemmMR = 2
	gemmNR = 4
)

// gemmKernel returns the gemmMR×gemmNR block Σ_k ap[k·mr+r]·bp[k·nr+q].
func gemmKernel(ap, bp []float32) [gemmMR * gemmNR]float32 {
	return gemmKernel2x4(ap, bp)
}

// gemmKernel2x4 returns the 2×4 block Σ_k ap[k·2+r]·bp[k·4+q]. Two rows by
// four columns is the largest block whose accumulators and operands stay in
// amd64's 15 usable float registers (measured fastest of 2×4, 2×6, 3×4, 4×4).
func gemmKernel2x4(ap, bp []float32) [8]float32 {
	var c00, c01, c02, c03, c10, c11, c12, c13 float32
	for len(ap) >= 2 && len(bp) >= 4 {
		a0, a1 := ap[0], ap[1]
		b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		ap, bp = ap[2:], bp[4:]
	}
	return [8]float32{c00, c01, c02, c03, c10, c11, c12, c13}
}

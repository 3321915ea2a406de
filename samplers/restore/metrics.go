package restore

import (
	"fmt"
	"math"
)

// PSNR returns 10·log₁₀(1/MSE) of two images with values in [0, 1]
// (any layout, same length); +Inf for identical images.
func PSNR(a, b []float32) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("restore: psnr: %d and %d values", len(a), len(b))
	}
	s := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		s += d * d
	}
	if s == 0 {
		return math.Inf(1), nil
	}
	return 10 * math.Log10(float64(len(a))/s), nil
}

// SSIM is the structural similarity of Wang, Bovik, Sheikh & Simoncelli
// (IEEE TIP 2004) in its standard form: an 11×11 Gaussian window with
// σ = 1.5, K₁ = 0.01, K₂ = 0.03, data range L = 1 (images in [0, 1]),
//
//	SSIM = (2μ_aμ_b + C₁)(2σ_ab + C₂) / ((μ_a² + μ_b² + C₁)(σ_a² + σ_b² + C₂)),
//	C₁ = (K₁L)², C₂ = (K₂L)²,
//
// evaluated at every position where the window fits inside the image (the
// authors' MATLAB ssim_index, 'valid' filtering; no downsampling) and
// averaged over positions and channels. a and b are [C, H, W].
func SSIM(a, b []float32, c, h, w int) (float64, error) {
	const win, sigma, k1, k2 = 11, 1.5, 0.01, 0.03
	if len(a) != c*h*w || len(b) != c*h*w || c <= 0 {
		return 0, fmt.Errorf("restore: ssim: %d and %d values for [%d, %d, %d]", len(a), len(b), c, h, w)
	}
	if h < win || w < win {
		return 0, fmt.Errorf("restore: ssim: image %d×%d is smaller than the %d×%d window", w, h, win, win)
	}
	var g [win]float64
	sum := 0.0
	for i := range g {
		d := float64(i - win/2)
		g[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += g[i]
	}
	for i := range g {
		g[i] /= sum
	}
	c1, c2 := k1*k1, k2*k2
	total, n := 0.0, 0
	for ch := range c {
		pa, pb := a[ch*h*w:(ch+1)*h*w], b[ch*h*w:(ch+1)*h*w]
		for y := 0; y+win <= h; y++ {
			for x := 0; x+win <= w; x++ {
				var ma, mb, saa, sbb, sab float64
				for i := range win {
					for j := range win {
						wt := g[i] * g[j]
						va, vb := float64(pa[(y+i)*w+x+j]), float64(pb[(y+i)*w+x+j])
						ma += wt * va
						mb += wt * vb
						saa += wt * va * va
						sbb += wt * vb * vb
						sab += wt * va * vb
					}
				}
				va, vb, cov := saa-ma*ma, sbb-mb*mb, sab-ma*mb
				total += (2*ma*mb + c1) * (2*cov + c2) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
				n++
			}
		}
	}
	return total / float64(n), nil
}

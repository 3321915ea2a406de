//go:build !js

package main

import (
	"fmt"
	"math"
)

// ssim is the structural similarity index of two grayscale images a, b
// (h×w, row-major) with values in [0, 1] (Wang, Bovik, Sheikh, Simoncelli,
// "Image quality assessment: from error visibility to structural
// similarity", IEEE TIP 2004, eq. 13), as in the authors' ssim_index.m:
//
//	SSIM(x, y) = (2 μx μy + C1)(2 σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2))
//
// with local statistics under an 11×11 Gaussian window (σ = 1.5, weights
// summing to 1), C1 = (K1 L)², C2 = (K2 L)², K1 = 0.01, K2 = 0.03, L = 1,
// averaged over the 'valid' window positions ((h−10)×(w−10), no padding).
func ssim(a, b []float64, h, w int) (float64, error) {
	const win, sigma = 11, 1.5
	if len(a) != h*w || len(b) != h*w {
		return 0, fmt.Errorf("ssim: images of %d and %d values, want %d×%d", len(a), len(b), h, w)
	}
	if h < win || w < win {
		return 0, fmt.Errorf("ssim: image %d×%d is smaller than the %d×%d window", h, w, win, win)
	}
	const c1, c2 = 0.01 * 0.01, 0.03 * 0.03
	var g [win]float64
	var sum float64
	for i := range g {
		d := float64(i - win/2)
		g[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += g[i]
	}
	for i := range g {
		g[i] /= sum
	}
	var total float64
	for y := 0; y+win <= h; y++ {
		for x := 0; x+win <= w; x++ {
			var mx, my, xx, yy, xy float64
			for i := 0; i < win; i++ {
				for j := 0; j < win; j++ {
					k := g[i] * g[j]
					p, q := a[(y+i)*w+x+j], b[(y+i)*w+x+j]
					mx += k * p
					my += k * q
					xx += k * p * p
					yy += k * q * q
					xy += k * p * q
				}
			}
			vx, vy, cxy := xx-mx*mx, yy-my*my, xy-mx*my
			total += (2*mx*my + c1) * (2*cxy + c2) / ((mx*mx + my*my + c1) * (vx + vy + c2))
		}
	}
	return total / float64((h-win+1)*(w-win+1)), nil
}

// psnr is the peak signal-to-noise ratio in dB of b against a, both in
// [0, 1]: 10 log10(1 / MSE), with the MSE floored at 1e−12 (120 dB) so
// identical images give a finite number.
func psnr(a, b []float64) float64 {
	var se float64
	for i := range a {
		d := a[i] - b[i]
		se += d * d
	}
	return 10 * math.Log10(1/math.Max(se/float64(len(a)), 1e-12))
}

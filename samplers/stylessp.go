package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// StyleSSP start point (Xu et al., "StyleSSP: Sampling StartPoint
// Enhancement for Training-free Diffusion-based Method for Style
// Transfer", 2025, §3.2–3.3). Two changes to the DDIM-inverted start latent
// of the content image:
//
//  1. Frequency manipulation: reduce the low-frequency components of z_T so
//     that sampling follows the content layout. The paper filters in the
//     Fourier domain; here the low-pass component is a border-normalised
//     box or Gaussian blur and z'_T = z_T − λ·blur(z_T) (λ = 1 removes the
//     low-pass part entirely, λ = 0 keeps z_T).
//  2. Negative guidance via inversion: invert with classifier-free
//     guidance against a negative condition describing the style image's
//     content, ε = ε(neg) + g·(ε(prompt) − ε(neg)) with g > 1, so the
//     start point moves away from that content (InvertOptions.Negative,
//     .Guidance).

// LowPass configures the blur of ReduceLowFrequency.
type LowPass struct {
	// Radius of the (2·Radius+1)² window.
	Radius int
	// Sigma > 0 weighs the window with a Gaussian exp(−d²/2σ²); 0 is a box.
	Sigma float64
}

// ReduceLowFrequency returns z − λ·blur(z) for z [N, C, H, W]; the blur
// averages each channel over the window, normalised by the window's part
// inside the image (so a constant field stays constant: c → (1−λ)·c).
func ReduceLowFrequency(be nn.Backend, z *nn.Tensor, lambda float32, lp LowPass) (*nn.Tensor, error) {
	if z == nil || z.Rank() != 4 {
		return nil, fmt.Errorf("stylessp: latents %v, want [N, C, H, W]", editShapeOf(z))
	}
	if lp.Radius < 0 || lp.Sigma < 0 || math.IsNaN(lp.Sigma) {
		return nil, fmt.Errorf("stylessp: low-pass radius %d, sigma %v", lp.Radius, lp.Sigma)
	}
	if math.IsNaN(float64(lambda)) || math.IsInf(float64(lambda), 0) {
		return nil, fmt.Errorf("stylessp: low-frequency factor %v", lambda)
	}
	if lambda == 0 {
		return be.Affine(z, 1, 0), be.Err()
	}
	c, h, w := z.Dim(1), z.Dim(2), z.Dim(3)
	k := 2*lp.Radius + 1
	win := make([]float32, k*k)
	for y := 0; y < k; y++ {
		for x := 0; x < k; x++ {
			wt := 1.0
			if lp.Sigma > 0 {
				dy, dx := float64(y-lp.Radius), float64(x-lp.Radius)
				wt = math.Exp(-(dy*dy + dx*dx) / (2 * lp.Sigma * lp.Sigma))
			}
			win[y*k+x] = float32(wt)
		}
	}
	// Per-channel (diagonal) kernel [C, C, k, k] and the window mass
	// inside the image (the same window over a field of ones).
	diag := make([]float32, c*c*k*k)
	for ch := 0; ch < c; ch++ {
		copy(diag[(ch*c+ch)*k*k:], win)
	}
	ones := make([]float32, h*w)
	for i := range ones {
		ones[i] = 1
	}
	wd := be.Upload([]int{c, c, k, k}, diag)
	w1 := be.Upload([]int{1, 1, k, k}, win)
	o1 := be.Upload([]int{1, 1, h, w}, ones)
	p := nn.Conv2dSame(1, lp.Radius)
	sum := be.Conv2d(z, wd, nil, p)
	mass := be.Conv2d(o1, w1, nil, p)
	blur := be.Binary(nn.Div, sum, mass)
	out := be.Axpby(1, z, -lambda, blur)
	nn.Free(wd, w1, o1, sum, mass, blur)
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

// StyleSSPStart inverts the content latent x0 with o (set o.Negative and
// o.Guidance for negative guidance) and returns the trajectory and the
// start point with reduced low frequencies (caller frees both).
func StyleSSPStart(be nn.Backend, x0 *nn.Tensor, o InvertOptions, lambda float32, lp LowPass) (*LatentTrajectory, *nn.Tensor, error) {
	tr, err := InvertTrajectory(be, x0, o)
	if err != nil {
		return nil, nil, err
	}
	start, err := ReduceLowFrequency(be, tr.Latent(0), lambda, lp)
	if err != nil {
		tr.Free()
		return nil, nil, err
	}
	return tr, start, nil
}

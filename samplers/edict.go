package samplers

import (
	"fmt"
	"math"
	"slices"

	"retrace/nn"
)

// EDICT is Exact Diffusion Inversion via Coupled Transformations (Wallace,
// Gokul & Naik, CVPR 2023, arXiv 2211.12446): two coupled latents x, y
// that each take a DDIM step driven by the noise predicted from the other,
// followed by a mixing layer, so every step is an invertible affine
// coupling — the inversion is exact up to float rounding for any ε-model.
// Semantics follow diffusers' community EDICTPipeline
// (examples/community/edict_pipeline.py), with the DDIM grid of a
// diffusers scheduler config.
//
// Denoising step from level t to the next lower level s (the paper's
// EDICT denoising equations), with a_t = √(ᾱ_s/ᾱ_t),
// b_t = √(1−ᾱ_s) − a_t·√(1−ᾱ_t) (DDIM, Song et al. eq. 12, as x·a + ε·b):
//
//	x_inter = a_t·x_t + b_t·ε(y_t, t)
//	y_inter = a_t·y_t + b_t·ε(x_inter, t)
//	x_s = p·x_inter + (1−p)·y_inter
//	y_s = p·y_inter + (1−p)·x_s
//
// and its exact inverse (the paper's EDICT noising/inversion equations):
//
//	y_inter = (y_s − (1−p)·x_s)/p
//	x_inter = (x_s − (1−p)·y_inter)/p
//	y_t = (y_inter − b_t·ε(x_inter, t))/a_t
//	x_t = (x_inter − b_t·ε(y_t, t))/a_t
//
// With Leapfrog the roles of x and y swap on every other step (x first on
// even step indices counted from the top, y first on odd ones).
type EDICT struct {
	// P is the mixing coefficient p (default 0.93).
	P float64
	// Leapfrog alternates which latent is updated first (default true).
	Leapfrog bool
	s        *exactSchedule
}

// NewEDICT builds EDICT for steps timesteps of cfg's DDIM grid with the
// pipeline defaults p = 0.93 and leapfrog steps.
func NewEDICT(cfg SchedulerConfig, steps int) (*EDICT, error) {
	s, err := newExactSchedule("edict", cfg, steps)
	if err != nil {
		return nil, err
	}
	return &EDICT{P: 0.93, Leapfrog: true, s: s}, nil
}

// Timesteps returns the descending timesteps.
func (d *EDICT) Timesteps() []int { return append([]int(nil), d.s.timesteps...) }

// coef returns the DDIM step t → s as x·a + ε·b.
func (d *EDICT) coef(t, s int) (a, b float64) {
	at, as := d.s.alpha(t), d.s.alpha(s)
	a = math.Sqrt(as / at)
	b = math.Sqrt(1-as) - a*math.Sqrt(1-at)
	return a, b
}

// order returns the latent (0 = x, 1 = y) that denoising step i (counted
// from the top level) updates first.
func (d *EDICT) order(i int) (first, second int) {
	if d.Leapfrog && i%2 == 1 {
		return 1, 0
	}
	return 0, 1
}

func (d *EDICT) check() error {
	if !(d.P > 0 && d.P <= 1) {
		return fmt.Errorf("edict: mixing coefficient p = %v (want 0 < p ≤ 1)", d.P)
	}
	return nil
}

// Invert noises the image latent x0 up the last ⌊n·strength⌋ timesteps
// (x = y = x0 at the start) and returns the coupled latents (x, y) at the
// highest of them. Two model calls per step.
//
// The step order is the exact inverse of Reconstruct's for any number of
// steps; the community pipeline counts its leapfrog parity from the bottom
// instead, which is the same whenever the number of steps is even.
func (d *EDICT) Invert(be nn.Backend, eps EpsFunc, x0 *nn.Tensor, strength float64) (x, y *nn.Tensor, err error) {
	if err := d.check(); err != nil {
		return nil, nil, err
	}
	if err := checkExactLatents("edict", "x0", x0); err != nil {
		return nil, nil, err
	}
	m, err := d.s.strengthSteps(strength)
	if err != nil {
		return nil, nil, err
	}
	lv := d.s.levels(m)
	p := d.P
	c := [2]*nn.Tensor{nn.Reshape(x0, x0.Shape()...), nn.Reshape(x0, x0.Shape()...)}
	for i := m - 1; i >= 0; i-- {
		// Undo the mixing layer (y first: it was mixed last).
		ny := be.Axpby(float32(1/p), c[1], float32(-(1-p)/p), c[0])
		nn.Free(c[1])
		c[1] = ny
		nx := be.Axpby(float32(1/p), c[0], float32(-(1-p)/p), c[1])
		nn.Free(c[0])
		c[0] = nx
		// Undo the two half steps, the second one first.
		a, b := d.coef(lv[i], lv[i+1])
		first, second := d.order(i)
		for _, k := range [2]int{second, first} {
			if err := be.Err(); err != nil {
				nn.Free(c[0], c[1])
				return nil, nil, err
			}
			e, err := callExactEps(be, "edict", eps, c[1-k], lv[i])
			if err != nil {
				nn.Free(c[0], c[1])
				return nil, nil, err
			}
			nk := be.Axpby(float32(1/a), c[k], float32(-b/a), e)
			nn.Free(e, c[k])
			c[k] = nk
		}
	}
	if err := be.Err(); err != nil {
		nn.Free(c[0], c[1])
		return nil, nil, err
	}
	return c[0], c[1], nil
}

// Reconstruct denoises the coupled latents (x, y) from the highest of the
// last ⌊n·strength⌋ timesteps down to the bottom level and returns both
// (either one is the result; the pipeline returns x). With the inversion's
// eps this gives x0 back up to float rounding; with another prompt's eps it
// is an EDICT edit. Two model calls per step.
func (d *EDICT) Reconstruct(be nn.Backend, eps EpsFunc, x, y *nn.Tensor, strength float64) (*nn.Tensor, *nn.Tensor, error) {
	if err := d.check(); err != nil {
		return nil, nil, err
	}
	if err := checkExactLatents("edict", "x", x); err != nil {
		return nil, nil, err
	}
	if err := checkExactLatents("edict", "y", y); err != nil {
		return nil, nil, err
	}
	if !slices.Equal(x.Shape(), y.Shape()) {
		return nil, nil, fmt.Errorf("edict: coupled latents %v and %v differ in shape", x.Shape(), y.Shape())
	}
	m, err := d.s.strengthSteps(strength)
	if err != nil {
		return nil, nil, err
	}
	lv := d.s.levels(m)
	p := d.P
	c := [2]*nn.Tensor{nn.Reshape(x, x.Shape()...), nn.Reshape(y, y.Shape()...)}
	for i := 0; i < m; i++ {
		a, b := d.coef(lv[i], lv[i+1])
		first, second := d.order(i)
		for _, k := range [2]int{first, second} {
			if err := be.Err(); err != nil {
				nn.Free(c[0], c[1])
				return nil, nil, err
			}
			e, err := callExactEps(be, "edict", eps, c[1-k], lv[i])
			if err != nil {
				nn.Free(c[0], c[1])
				return nil, nil, err
			}
			nk := be.Axpby(float32(a), c[k], float32(b), e)
			nn.Free(e, c[k])
			c[k] = nk
		}
		// Mixing layer: x first, then y with the new x.
		nx := be.Axpby(float32(p), c[0], float32(1-p), c[1])
		nn.Free(c[0])
		c[0] = nx
		ny := be.Axpby(float32(p), c[1], float32(1-p), c[0])
		nn.Free(c[1])
		c[1] = ny
	}
	if err := be.Err(); err != nil {
		nn.Free(c[0], c[1])
		return nil, nil, err
	}
	return c[0], c[1], nil
}

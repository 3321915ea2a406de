package samplers

import (
	"fmt"
	"slices"

	"retrace/nn"
)

// BDIA is BDIA-DDIM (Zhang, Lewis & Kleijn, "Exact Diffusion Inversion via
// Bi-directional Integration Approximation", ECCV 2024, arXiv 2307.10829):
// DDIM sampling in which every update is a linear combination of
// (z_{i+1}, z_i, ε(z_i, t_i)), so that z_{i+1} can be recovered exactly
// from (z_i, z_{i−1}) — exact diffusion inversion with one model call per
// step. Semantics follow the authors' code (github:guoqiang-zhang-x/BDIA,
// BDIADDIMSampler for sampling, BDIA_stablediffusion with run_baseline for
// inversion and reconstruction), on the DDIM time grid of a diffusers
// scheduler config.
//
// Notation (levels descending, ᾱ(t<0) = the final alpha):
//
//	DDIM(z, ε; s→r) = √ᾱ_r·(z − √(1−ᾱ_s)·ε)/√ᾱ_s + √(1−ᾱ_r)·ε        (DDIM, Song et al. eq. 12)
//
// and the BDIA-DDIM update (the paper's z_{i−1} update with the forward
// integration Δ(t_i→t_{i−1}) and the backward one Δ(t_i→t_{i+1}), both DDIM
// steps from z_i):
//
//	z_{i−1} = γ·z_{i+1} − γ·DDIM(z_i, ε_i; t_i→t_{i+1}) + DDIM(z_i, ε_i; t_i→t_{i−1})
//
// γ ∈ (0, 1] averages the backward and forward approximations of the slot
// [t_{i+1}, t_i] (γ = 1: the paper's exact-inversion setting; γ = 0 would be
// plain DDIM and cannot be inverted).
type BDIA struct {
	Gamma float64
	s     *exactSchedule
}

// NewBDIA builds BDIA-DDIM for steps timesteps of cfg's DDIM grid.
func NewBDIA(cfg SchedulerConfig, steps int, gamma float64) (*BDIA, error) {
	if !(gamma > 0 && gamma <= 1) {
		return nil, fmt.Errorf("bdia: gamma %v (want 0 < γ ≤ 1)", gamma)
	}
	s, err := newExactSchedule("bdia", cfg, steps)
	if err != nil {
		return nil, err
	}
	return &BDIA{Gamma: gamma, s: s}, nil
}

// Timesteps returns the descending timesteps.
func (b *BDIA) Timesteps() []int { return append([]int(nil), b.s.timesteps...) }

// Sample denoises xT (at the first timestep) through all timesteps and
// returns the latent at the bottom level. The first step has no z_{i+1}
// and is a plain DDIM step (BDIADDIMSampler: x_last is None at the start).
func (b *BDIA) Sample(be nn.Backend, eps EpsFunc, xT *nn.Tensor) (*nn.Tensor, error) {
	if err := checkExactLatents("bdia", "x_T", xT); err != nil {
		return nil, err
	}
	lv := b.s.levels(len(b.s.timesteps))
	e, err := callExactEps(be, "bdia", eps, xT, lv[0])
	if err != nil {
		return nil, err
	}
	cx, ce := b.s.ddimCoef(lv[0], lv[1])
	z1 := be.Axpby(float32(cx), xT, float32(ce), e)
	nn.Free(e)
	if err := be.Err(); err != nil {
		nn.Free(z1)
		return nil, err
	}
	if len(lv) == 2 {
		return z1, nil
	}
	return b.denoise(be, eps, nn.Reshape(xT, xT.Shape()...), z1, lv)
}

// Invert maps the image latent x0 up the last ⌊n·strength⌋ timesteps and
// returns the pair (z_top, z_below) that Reconstruct (or an edit with
// another eps) starts from: z_top at the highest inverted timestep, z_below
// one level lower. x0 sits at the bottom level (eps sees that level's
// timestep, e.g. −49). The first step is plain DDIM inversion, then each
// step solves the BDIA update for the upper latent:
//
//	z_{i+1} = (z_{i−1} − DDIM(z_i, ε_i; t_i→t_{i−1}))/γ + DDIM(z_i, ε_i; t_i→t_{i+1})
func (b *BDIA) Invert(be nn.Backend, eps EpsFunc, x0 *nn.Tensor, strength float64) (top, below *nn.Tensor, err error) {
	if err := checkExactLatents("bdia", "x0", x0); err != nil {
		return nil, nil, err
	}
	m, err := b.s.strengthSteps(strength)
	if err != nil {
		return nil, nil, err
	}
	lv := b.s.levels(m)
	// c[j]: ascending levels, c[0] = bottom (x0), c[m] = the top.
	c := make([]int, m+1)
	for j := range c {
		c[j] = lv[m-j]
	}
	e, err := callExactEps(be, "bdia", eps, x0, c[0])
	if err != nil {
		return nil, nil, err
	}
	cx, ce := b.s.ddimCoef(c[0], c[1])
	prev, cur := nn.Reshape(x0, x0.Shape()...), be.Axpby(float32(cx), x0, float32(ce), e)
	nn.Free(e)
	g := b.Gamma
	for k := 1; k < m; k++ {
		if err := be.Err(); err != nil {
			nn.Free(prev, cur)
			return nil, nil, err
		}
		e, err := callExactEps(be, "bdia", eps, cur, c[k])
		if err != nil {
			nn.Free(prev, cur)
			return nil, nil, err
		}
		dx, de := b.s.ddimCoef(c[k], c[k-1]) // back down to the level below
		ux, ue := b.s.ddimCoef(c[k], c[k+1]) // on up to the level above
		next := b.combine(be, 1/g, prev, ux-dx/g, cur, ue-de/g, e)
		nn.Free(e, prev)
		prev, cur = cur, next
	}
	if err := be.Err(); err != nil {
		nn.Free(prev, cur)
		return nil, nil, err
	}
	return cur, prev, nil
}

// Reconstruct runs the BDIA update down from the pair (top, below) that
// Invert returned for the same strength, and returns the latent at the
// bottom level: x0 again, up to float rounding, when eps is the inversion's;
// an edit when eps carries another prompt. It is the algebraic inverse of
// Invert's steps, one model call per level below the top.
func (b *BDIA) Reconstruct(be nn.Backend, eps EpsFunc, top, below *nn.Tensor, strength float64) (*nn.Tensor, error) {
	if err := checkExactLatents("bdia", "top latent", top); err != nil {
		return nil, err
	}
	if err := checkExactLatents("bdia", "lower latent", below); err != nil {
		return nil, err
	}
	if !slices.Equal(top.Shape(), below.Shape()) {
		return nil, fmt.Errorf("bdia: latent pair %v and %v differ in shape", top.Shape(), below.Shape())
	}
	m, err := b.s.strengthSteps(strength)
	if err != nil {
		return nil, err
	}
	return b.denoise(be, eps, nn.Reshape(top, top.Shape()...), nn.Reshape(below, below.Shape()...), b.s.levels(m))
}

// denoise applies the BDIA update from z_0 = prev (level lv[0]) and z_1 =
// cur (level lv[1]) down to level lv[len−1] and returns that latent; it
// takes ownership of prev and cur.
func (b *BDIA) denoise(be nn.Backend, eps EpsFunc, prev, cur *nn.Tensor, lv []int) (*nn.Tensor, error) {
	g := b.Gamma
	for k := 1; k+1 < len(lv); k++ {
		if err := be.Err(); err != nil {
			nn.Free(prev, cur)
			return nil, err
		}
		e, err := callExactEps(be, "bdia", eps, cur, lv[k])
		if err != nil {
			nn.Free(prev, cur)
			return nil, err
		}
		dx, de := b.s.ddimCoef(lv[k], lv[k+1]) // forward: down to t_{k+1}
		ux, ue := b.s.ddimCoef(lv[k], lv[k-1]) // backward: up to t_{k−1}
		next := b.combine(be, g, prev, dx-g*ux, cur, de-g*ue, e)
		nn.Free(e, prev)
		prev, cur = cur, next
	}
	nn.Free(prev)
	if err := be.Err(); err != nil {
		nn.Free(cur)
		return nil, err
	}
	return cur, nil
}

// combine returns a·x + b·y + c·e, coefficients computed in float64.
func (b *BDIA) combine(be nn.Backend, a float64, x *nn.Tensor, bb float64, y *nn.Tensor, c float64, e *nn.Tensor) *nn.Tensor {
	xy := be.Axpby(float32(a), x, float32(bb), y)
	out := be.Axpby(1, xy, float32(c), e)
	nn.Free(xy)
	return out
}

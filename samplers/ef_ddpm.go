package samplers

import (
	"fmt"
	"math"
	"slices"

	"retrace/nn"
)

// EFDDPM is the edit-friendly DDPM noise space (Huberman-Spiegelglas,
// Kulikov & Michaeli, "An Edit Friendly DDPM Noise Space: Inversion and
// Manipulations", CVPR 2024, arXiv 2304.06140). Instead of one Gaussian
// trajectory, every x_t is drawn independently from q(x_t | x_0); the noise
// maps z_t are then whatever makes the DDPM sampler (DDIM with η > 0,
// Song et al. eqs. 12 and 16) pass exactly through those x_t:
//
//	x_t   = √ᾱ_t·x_0 + √(1−ᾱ_t)·ε̃_t,   ε̃_t ~ N(0, I) independent per t
//	μ_t(x_t) = √ᾱ_s·x̂_0 + √(1 − ᾱ_s − η·σ_t²)·ε(x_t, t),   x̂_0 = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t
//	σ_t²  = (1−ᾱ_s)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_s)                    (s: the next lower level)
//	z_t   = (x_s − μ_t(x_t))/(η·σ_t)
//	x_s   = μ_t(x_t) + η·σ_t·z_t                                (the sampler; exact with these z_t)
//
// Editing re-runs the sampler with the same z_t but another ε (prompt),
// optionally starting T_skip steps below the top. Semantics follow the
// authors' code (github:inbarhub/DDPM_inversion, ddm_inversion/
// inversion_utils.py: sample_xts_from_x0, inversion_forward_process,
// inversion_reverse_process), including the √(1 − ᾱ_s − η·σ²) direction
// term (η, not η², as there; the same for η = 1) and zeroing the last
// noise map.
type EFDDPM struct {
	// Eta is η > 0 (default 1, the paper's setting).
	Eta float64
	s   *exactSchedule
}

// EFDDPMInversion holds the result of EFDDPM.Invert, indexed from the
// bottom: Xts[0] ≈ x0 (recomputed), Xts[i] at level Timesteps()[n−i]
// (Xts[n] is the top); Zs[i] is the noise map of the step that lands on
// Xts[i] (Zs[0], the last step's, is zeroed as in the reference; Z0 keeps
// its computed value, which makes the reconstruction exact).
type EFDDPMInversion struct {
	Xts []*nn.Tensor
	Zs  []*nn.Tensor
	Z0  *nn.Tensor
}

// Free releases every tensor of the inversion.
func (r *EFDDPMInversion) Free() {
	nn.Free(r.Xts...)
	nn.Free(r.Zs...)
	nn.Free(r.Z0)
	r.Xts, r.Zs, r.Z0 = nil, nil, nil
}

// ExactZs returns the noise maps with Zs[0] restored to Z0 (new references
// to the same tensors; free them with nn.Free).
func (r *EFDDPMInversion) ExactZs() []*nn.Tensor {
	zs := make([]*nn.Tensor, len(r.Zs))
	for i, z := range r.Zs {
		if i == 0 {
			z = r.Z0
		}
		zs[i] = nn.Reshape(z, z.Shape()...)
	}
	return zs
}

// NewEFDDPM builds the edit-friendly DDPM inversion for steps timesteps of
// cfg's DDIM grid, η = 1.
func NewEFDDPM(cfg SchedulerConfig, steps int) (*EFDDPM, error) {
	s, err := newExactSchedule("ef-ddpm", cfg, steps)
	if err != nil {
		return nil, err
	}
	return &EFDDPM{Eta: 1, s: s}, nil
}

// Timesteps returns the descending timesteps.
func (f *EFDDPM) Timesteps() []int { return append([]int(nil), f.s.timesteps...) }

// EFDDPMNoise draws n standard normal tensors of the given shape from the
// seeded generator (bit-identical natively and in the browser): the ε̃ of
// SampleXts / Invert.
func EFDDPMNoise(be nn.Backend, shape []int, n int, rng *Noise) []*nn.Tensor {
	out := make([]*nn.Tensor, n)
	for i := range out {
		out[i] = rng.Tensor(be, shape...)
	}
	return out
}

// SampleXts draws x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·noise[k] for every timestep,
// noise[k] used for the k-th timestep from the bottom (the reference's
// call order), and returns xts[0] = x0 (a new reference), xts[i] at level
// Timesteps()[n−i].
func (f *EFDDPM) SampleXts(be nn.Backend, x0 *nn.Tensor, noise []*nn.Tensor) ([]*nn.Tensor, error) {
	if err := checkExactLatents("ef-ddpm", "x0", x0); err != nil {
		return nil, err
	}
	n := len(f.s.timesteps)
	if len(noise) != n {
		return nil, fmt.Errorf("ef-ddpm: %d noise tensors for %d timesteps", len(noise), n)
	}
	xts := make([]*nn.Tensor, n+1)
	xts[0] = nn.Reshape(x0, x0.Shape()...)
	for k := 0; k < n; k++ {
		if noise[k] == nil || !slices.Equal(noise[k].Shape(), x0.Shape()) {
			nn.Free(xts...)
			return nil, fmt.Errorf("ef-ddpm: noise[%d] %v must be shaped like x0 %v", k, noise[k], x0.Shape())
		}
		a := f.s.alpha(f.s.timesteps[n-1-k])
		xts[k+1] = be.Axpby(float32(math.Sqrt(a)), x0, float32(math.Sqrt(1-a)), noise[k])
	}
	if err := be.Err(); err != nil {
		nn.Free(xts...)
		return nil, err
	}
	return xts, nil
}

// stepCoef returns, for the step from level t down to level s, the
// coefficients of μ_t = cx·x_t + ce·ε and the noise scale η·σ_t.
func (f *EFDDPM) stepCoef(t, s int) (cx, ce, sigma float64) {
	at, as := f.s.alpha(t), f.s.alpha(s)
	v := (1 - as) / (1 - at) * (1 - at/as)
	dir := math.Sqrt(math.Max(0, 1-as-f.Eta*v))
	cx = math.Sqrt(as) / math.Sqrt(at)
	ce = dir - math.Sqrt(as)*math.Sqrt(1-at)/math.Sqrt(at)
	return cx, ce, f.Eta * math.Sqrt(v)
}

// mu returns μ_t(x) and η·σ_t for the step t → s (one model call). The
// inversion and the sampler share it, so the sampler reproduces the
// inversion's x_t bit for bit.
func (f *EFDDPM) mu(be nn.Backend, eps EpsFunc, x *nn.Tensor, t, s int) (*nn.Tensor, float64, error) {
	e, err := callExactEps(be, "ef-ddpm", eps, x, t)
	if err != nil {
		return nil, 0, err
	}
	cx, ce, sigma := f.stepCoef(t, s)
	m := be.Axpby(float32(cx), x, float32(ce), e)
	nn.Free(e)
	return m, sigma, be.Err()
}

// Invert computes the edit-friendly noise maps of x0 for the given draws
// (len = number of timesteps; see EFDDPMNoise): x_t from SampleXts, then
// from the top down z_t = (x_s − μ_t(x_t))/(η·σ_t), replacing x_s by
// μ_t(x_t) + η·σ_t·z_t (the reference's correction against rounding, which
// the next step reads). One model call per step. With set_alpha_to_one the
// last step has σ = 0: its noise map is 0 and Xts[0] = μ, so x0 is not
// reproduced exactly there (the method needs σ > 0 at every step).
func (f *EFDDPM) Invert(be nn.Backend, eps EpsFunc, x0 *nn.Tensor, noise []*nn.Tensor) (*EFDDPMInversion, error) {
	if !(f.Eta > 0) {
		return nil, fmt.Errorf("ef-ddpm: eta %v (want > 0: the noise maps divide by η·σ)", f.Eta)
	}
	xts, err := f.SampleXts(be, x0, noise)
	if err != nil {
		return nil, err
	}
	n := len(f.s.timesteps)
	lv := f.s.levels(n)
	r := &EFDDPMInversion{Xts: xts, Zs: make([]*nn.Tensor, n)}
	for k := 0; k < n; k++ {
		idx := n - 1 - k // x_t = xts[idx+1] at lv[k], x_s = xts[idx] at lv[k+1]
		m, sigma, err := f.mu(be, eps, xts[idx+1], lv[k], lv[k+1])
		if err != nil {
			nn.Free(m)
			r.Free()
			return nil, err
		}
		var z *nn.Tensor
		if sigma > 0 {
			z = be.Axpby(float32(1/sigma), xts[idx], float32(-1/sigma), m)
		} else {
			// σ = 0 (a final alpha of 1 below the last timestep): the step
			// is deterministic, no noise map can reach x_s, and x_s = μ.
			z = be.Zeros(m.Shape())
		}
		xs := be.Axpby(1, m, float32(sigma), z)
		nn.Free(m, xts[idx])
		xts[idx], r.Zs[idx] = xs, z
	}
	if err := be.Err(); err != nil {
		r.Free()
		return nil, err
	}
	r.Z0 = r.Zs[0]
	r.Zs[0] = be.Zeros(r.Z0.Shape())
	return r, be.Err()
}

// Reverse runs the DDPM sampler over the last len(zs) timesteps from xT
// (the latent at the first of them) with the given noise maps (zs[i] lands
// on level i from the bottom, as in EFDDPMInversion.Zs) and returns the
// latent at the bottom level. With the inversion's eps, xT =
// Xts[len(zs)] and ExactZs()[:len(zs)] it reproduces Xts[0] exactly; with
// another prompt's eps it is the paper's edit (T_skip = n − len(zs) steps
// skipped at the top).
func (f *EFDDPM) Reverse(be nn.Backend, eps EpsFunc, xT *nn.Tensor, zs []*nn.Tensor) (*nn.Tensor, error) {
	if !(f.Eta > 0) {
		return nil, fmt.Errorf("ef-ddpm: eta %v (want > 0)", f.Eta)
	}
	if err := checkExactLatents("ef-ddpm", "x_T", xT); err != nil {
		return nil, err
	}
	n := len(f.s.timesteps)
	if len(zs) < 1 || len(zs) > n {
		return nil, fmt.Errorf("ef-ddpm: %d noise maps for %d timesteps (want 1…%d)", len(zs), n, n)
	}
	for i, z := range zs {
		if z == nil || !slices.Equal(z.Shape(), xT.Shape()) {
			return nil, fmt.Errorf("ef-ddpm: noise map %d %v must be shaped like x_T %v", i, z, xT.Shape())
		}
	}
	lv := f.s.levels(len(zs))
	x := nn.Reshape(xT, xT.Shape()...)
	for j := 0; j < len(zs); j++ {
		m, sigma, err := f.mu(be, eps, x, lv[j], lv[j+1])
		nn.Free(x)
		if err != nil {
			nn.Free(m)
			return nil, err
		}
		x = be.Axpby(1, m, float32(sigma), zs[len(zs)-1-j])
		nn.Free(m)
	}
	if err := be.Err(); err != nil {
		nn.Free(x)
		return nil, err
	}
	return x, nil
}

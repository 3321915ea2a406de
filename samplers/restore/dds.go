package restore

import (
	"fmt"
	"math"

	"retrace/nn"
	"retrace/samplers"
)

// ddsX0Var caps the error variance DDS assumes for x̂₀ under measurement
// noise (model units; tuned on 10 Fashion-MNIST test images of the default
// model at σ_y = 0.1 in [0, 1] units, i.e. ρ ≥ 4: ρ = 1, 4, 10, 30 gave
// 22.3, 24.8, 18.3, 12.0 dB).
const ddsX0Var = 0.01

// DDS is the Decomposed Diffusion Sampler (Chung, Lee & Ye, "Decomposed
// Diffusion Sampler for Accelerating Large-Scale Inverse Problems", ICLR
// 2024, Algorithm 1). For each timestep t (ᾱ' the next level, 1 after the
// last):
//
//	ε̂ = ε_θ(x_t, t),  x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t       (Tweedie, eq. 6; clamped to [−1, 1])
//	x̂₀' = CG_M(AᵀA + ρI, Aᵀy + ρx̂₀; start x̂₀)              (eq. 12–13: M conjugate-gradient steps)
//	x_{t−1} = √ᾱ'·x̂₀' + √(1−ᾱ'−σ_t²)·ε̂ + σ_t·z,            (DDIM, eq. 14)
//	σ_t = η·√((1−ᾱ')/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ')
//
// Noiseless, ρ defaults to 0: the paper's Krylov-subspace update: M steps of CG on
// the normal equations AᵀA x = Aᵀy from x̂₀ keep x̂₀' in x̂₀ + K_M, and
// stopping early regularises. With noise (σ_y > 0) and no Options.CGRho,
// ρ_t = σ_y²/v_t: the MAP weight of a Gaussian N(x̂₀, v_t·I) around Tweedie's
// estimate against the likelihood N(y; Ax, σ_y²I) (without it, denoising's
// A = I would make CG return the noisy y in one step), with the error
// variance of x̂₀ taken as v_t = min((1−ᾱ_t)/ᾱ_t, ddsX0Var): the first is
// the bound of a useless denoiser, which trusts x̂₀ fully at ᾱ → 1; the cap
// says a trained denoiser's x̂₀ is better than that at high noise (with the
// uncapped bound alone, DDS denoising of the default model at σ_y = 0.1
// lost 0.1 dB to y itself; see docs/RESTORE.md). CG runs entirely on the
// device: the scalars α = rᵀr / pᵀNp and β = r'ᵀr' / rᵀr are [1] tensors
// (Reduce of a product) broadcast into the updates, so nothing is read
// back; a tiny 1e-30 in the denominators makes a converged CG (r = 0) take
// zero steps instead of 0/0. The dot products run over the whole batch
// (CG on the block-diagonal system of all images at once).
func DDS(be nn.Backend, prior Prior, p Problem, o Options) (*nn.Tensor, Stats, error) {
	const method = "dds"
	if err := checkProblem(p); err != nil {
		return nil, Stats{}, err
	}
	eta, err := etaOr(o.Eta, 0.15)
	if err != nil {
		return nil, Stats{}, err
	}
	cg := o.CGSteps
	if cg == 0 {
		cg = 5
	}
	if cg < 0 || cg > 100 || !(o.CGRho >= 0) {
		return nil, Stats{}, fmt.Errorf("restore: dds: %d CG steps (want 1…100) and ρ = %v (want ≥ 0)", cg, o.CGRho)
	}
	s, err := newSchedule(method, prior.Config, o.Steps)
	if err != nil {
		return nil, Stats{}, err
	}
	aty, err := p.Op.AT(be, p.Y)
	if err != nil {
		return nil, Stats{}, err
	}
	defer nn.Free(aty)
	m := &model{method: method, eps: prior.Eps}
	g := samplers.NewNoise(o.Seed)
	x := g.Tensor(be, p.Shape...)
	for k, t := range s.ts {
		at, an := s.alphas(k)
		eps, err := m.at(be, x, t)
		if err != nil {
			nn.Free(x)
			return nil, Stats{m.calls}, err
		}
		x0 := tweedie(be, x, eps, at)
		rho := o.CGRho
		if rho == 0 && p.SigmaY > 0 {
			rho = p.SigmaY * p.SigmaY * max(at/(1-at), 1/ddsX0Var)
		}
		x0c, err := ConjugateGradient(be, p.Op, aty, x0, rho, cg)
		nn.Free(x0)
		if err != nil {
			nn.Free(x, eps)
			return nil, Stats{m.calls}, err
		}
		sigma := eta * math.Sqrt((1-an)/(1-at)) * math.Sqrt(1-at/an)
		cs, ts := []float64{math.Sqrt(an), math.Sqrt(max(1-an-sigma*sigma, 0))}, []*nn.Tensor{x0c, eps}
		var z *nn.Tensor
		if sigma > 0 {
			z = g.Tensor(be, p.Shape...)
			cs, ts = append(cs, sigma), append(ts, z)
		}
		nx := lin(be, cs, ts...)
		nn.Free(x, eps, z)
		x = nx
		if err := onStep(o, k, x0c); err != nil {
			nn.Free(x, x0c)
			return nil, Stats{m.calls}, err
		}
		nn.Free(x0c)
		if x, err = done(be, x); err != nil {
			return nil, Stats{m.calls}, err
		}
	}
	return x, Stats{m.calls}, nil
}

// ConjugateGradient runs n CG steps on (AᵀA + ρI)x = Aᵀy + ρ·x₀ from
// x = x₀ (aty = Aᵀy) and returns x; all on the device, no readback.
func ConjugateGradient(be nn.Backend, op Operator, aty, x0 *nn.Tensor, rho float64, n int) (*nn.Tensor, error) {
	normal := func(v *nn.Tensor) (*nn.Tensor, error) { // (AᵀA + ρI) v
		av, err := op.A(be, v)
		if err != nil {
			return nil, err
		}
		atav, err := op.AT(be, av)
		nn.Free(av)
		if err != nil || rho == 0 {
			return atav, err
		}
		out := be.Axpby(1, atav, float32(rho), v)
		nn.Free(atav)
		return done(be, out)
	}
	dotp := func(a, b *nn.Tensor) *nn.Tensor {
		ab := be.Binary(nn.Mul, a, b)
		s := be.Reduce(nn.Sum, ab)
		nn.Free(ab)
		return s
	}
	ratio := func(num, den *nn.Tensor) *nn.Tensor { // num / (den + 1e-30)
		d := be.Affine(den, 1, 1e-30)
		q := be.Binary(nn.Div, num, d)
		nn.Free(d)
		return q
	}
	// r = b − N x₀ = Aᵀy − AᵀA x₀ (the ρ terms cancel at x₀).
	nx0, err := normal(x0)
	if err != nil {
		return nil, err
	}
	b := aty
	if rho != 0 {
		b = be.Axpby(1, aty, float32(rho), x0)
		defer nn.Free(b)
	}
	r := be.Binary(nn.Sub, b, nx0)
	nn.Free(nx0)
	x := be.Affine(x0, 1, 0)
	pd := be.Affine(r, 1, 0)
	rs := dotp(r, r)
	for range n {
		np, err := normal(pd)
		if err != nil {
			nn.Free(x, r, pd, rs)
			return nil, err
		}
		pnp := dotp(pd, np)
		alpha := ratio(rs, pnp)
		ap := be.Binary(nn.Mul, pd, alpha)
		anp := be.Binary(nn.Mul, np, alpha)
		nx := be.Binary(nn.Add, x, ap)
		nr := be.Binary(nn.Sub, r, anp)
		nn.Free(x, r, np, pnp, alpha, ap, anp)
		x, r = nx, nr
		rsn := dotp(r, r)
		beta := ratio(rsn, rs)
		bp := be.Binary(nn.Mul, pd, beta)
		npd := be.Binary(nn.Add, r, bp)
		nn.Free(pd, bp, beta, rs)
		pd, rs = npd, rsn
		if err := be.Err(); err != nil {
			nn.Free(x, r, pd, rs)
			return nil, err
		}
	}
	nn.Free(r, pd, rs)
	return done(be, x)
}

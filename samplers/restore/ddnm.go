package restore

import (
	"math"

	"retrace/nn"
	"retrace/samplers"
)

// DDNM is the Denoising Diffusion Null-space Model (Wang, Yu & Zhang,
// "Zero-Shot Image Restoration Using Denoising Diffusion Null-Space
// Model", ICLR 2023), with DDNM+ for noisy measurements, in the
// DDIM-style form of the authors' simplified_ddnm_plus. From x_T ~ N(0, I),
// for each timestep t with ᾱ' the next level (1 after the last):
//
//	x₀|t = (x_t − √(1−ᾱ_t)·ε_θ(x_t, t)) / √ᾱ_t              (eq. 12, clamped to [−1, 1])
//	x̂₀|t = x₀|t − λ_t·A†(A x₀|t − y)                         (eq. 13; eq. 17 with Σ_t = λ_t I)
//	x_{t−1} = √ᾱ'·x̂₀|t + γ_t·(η·z + √(1−η²)·ε_θ),  z ~ N(0, I)
//
// with σ_t = √(1−ᾱ'), a_t = √ᾱ' and (eq. 19)
//
//	λ_t = 1, γ_t = √(σ_t² − a_t²σ_y²)   when σ_t ≥ a_t·σ_y,
//	λ_t = σ_t/(a_t·σ_y), γ_t = 0        otherwise.
//
// Noiseless (σ_y = 0) this is plain DDNM: λ = 1, γ = σ_t, and x̂₀|t lies
// exactly on {x : A x = y} (A A† y = y, A(I − A†A) = 0), so the result
// satisfies the measurement: the known pixels of an inpainting are y.
// Time travel (the paper's §3.3 back-and-forth) is not implemented.
func DDNM(be nn.Backend, prior Prior, p Problem, o Options) (*nn.Tensor, Stats, error) {
	const method = "ddnm"
	if err := checkProblem(p); err != nil {
		return nil, Stats{}, err
	}
	if err := Supports(method, p.Op, p.SigmaY); err != nil {
		return nil, Stats{}, err
	}
	eta, err := etaOr(o.Eta, 0.85)
	if err != nil {
		return nil, Stats{}, err
	}
	s, err := newSchedule(method, prior.Config, o.Steps)
	if err != nil {
		return nil, Stats{}, err
	}
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
		sig, a := math.Sqrt(1-an), math.Sqrt(an)
		lambda, gamma := 1.0, sig
		if p.SigmaY > 0 {
			if sig >= a*p.SigmaY {
				gamma = math.Sqrt(sig*sig - a*a*p.SigmaY*p.SigmaY)
			} else {
				lambda, gamma = sig/(a*p.SigmaY), 0
			}
		}
		x0h, err := project(be, p.Op, x0, p.Y, lambda)
		nn.Free(x0)
		if err != nil {
			nn.Free(x, eps)
			return nil, Stats{m.calls}, err
		}
		cs, ts := []float64{a, gamma * math.Sqrt(1-eta*eta)}, []*nn.Tensor{x0h, eps}
		var z *nn.Tensor
		if gamma*eta != 0 {
			z = g.Tensor(be, p.Shape...)
			cs, ts = append(cs, gamma*eta), append(ts, z)
		}
		nx := lin(be, cs, ts...)
		nn.Free(x, eps, z)
		x = nx
		if err := onStep(o, k, x0h); err != nil {
			nn.Free(x, x0h)
			return nil, Stats{m.calls}, err
		}
		nn.Free(x0h)
		if x, err = done(be, x); err != nil {
			return nil, Stats{m.calls}, err
		}
	}
	return x, Stats{m.calls}, nil
}

package restore

import (
	"math"

	"retrace/nn"
	"retrace/samplers"
)

// ScoreSDE is inpainting / colorization (and exact-projection
// super-resolution) with the VP predictor–corrector sampler of Song et al.,
// "Score-Based Generative Modeling through Stochastic Differential
// Equations" (ICLR 2021, Appendix I.2, Algorithms 3 and 5 via
// samplers.VPPredictorCorrector). After every corrector and predictor
// step, the measured part of x is replaced by the measurement diffused to
// the current level ᾱ_s:
//
//	y_s = √ᾱ_s·y + √(1−ᾱ_s)·A z,  z ~ N(0, I)
//	x ← x − A†(A x − y_s)
//
// For inpainting this is the paper's x ← (1−m)⊙x + m⊙y_s; for
// colorization the paper's decoupling transform amounts to replacing the
// channel mean (A = mean, A† = replicate), which the same formula does.
// With the default set_alpha_to_one the last level is ᾱ = 1 and the result
// satisfies A x = y exactly. Noiseless measurements only.
func ScoreSDE(be nn.Backend, prior Prior, p Problem, o Options) (*nn.Tensor, Stats, error) {
	const method = "sde"
	if err := checkProblem(p); err != nil {
		return nil, Stats{}, err
	}
	if err := Supports(method, p.Op, p.SigmaY); err != nil {
		return nil, Stats{}, err
	}
	pc, err := samplers.NewVPPredictorCorrector(prior.Config, o.Steps)
	if err != nil {
		return nil, Stats{}, err
	}
	if o.SNR > 0 {
		pc.SNR = o.SNR
	}
	switch {
	case o.Corrector > 0:
		pc.CorrectorSteps = o.Corrector
	case o.Corrector < 0:
		pc.CorrectorSteps = 0
	}
	m := &model{method: method, eps: prior.Eps}
	g := samplers.NewNoise(o.Seed)
	proj := func(x *nn.Tensor, ab float64) (*nn.Tensor, error) {
		var ys *nn.Tensor
		if ab >= 1 {
			ys = nn.Reshape(p.Y, p.Y.Shape()...)
		} else {
			z := g.Tensor(be, p.Shape...)
			az, err := p.Op.A(be, z)
			nn.Free(z)
			if err != nil {
				return nil, err
			}
			ys = be.Axpby(float32(math.Sqrt(ab)), p.Y, float32(math.Sqrt(1-ab)), az)
			nn.Free(az)
		}
		out, err := project(be, p.Op, x, ys, 1)
		nn.Free(ys)
		return out, err
	}
	x := g.Tensor(be, p.Shape...)
	n := len(pc.IntTimesteps)
	for k, t := range pc.IntTimesteps {
		at, an := pc.Levels(k)
		for range pc.CorrectorSteps {
			eps, err := m.at(be, x, t)
			if err != nil {
				nn.Free(x)
				return nil, Stats{m.calls}, err
			}
			z := g.Tensor(be, p.Shape...)
			nx := pc.CorrectorStep(be, k, x, eps, z)
			nn.Free(x, eps, z)
			if x, err = proj(nx, at); err != nil {
				nn.Free(nx)
				return nil, Stats{m.calls}, err
			}
			nn.Free(nx)
		}
		eps, err := m.at(be, x, t)
		if err != nil {
			nn.Free(x)
			return nil, Stats{m.calls}, err
		}
		var z *nn.Tensor
		if !(pc.Denoise && k == n-1) {
			z = g.Tensor(be, p.Shape...)
		}
		nx := pc.PredictorStep(be, k, x, eps, z)
		nn.Free(x, eps, z)
		if x, err = proj(nx, an); err != nil {
			nn.Free(nx)
			return nil, Stats{m.calls}, err
		}
		nn.Free(nx)
		if err := onStep(o, k, x); err != nil {
			nn.Free(x)
			return nil, Stats{m.calls}, err
		}
	}
	return x, Stats{m.calls}, nil
}

package restore

import (
	"math"

	"retrace/nn"
	"retrace/samplers"
)

// DDIMPaste is the plain-DDIM baseline: deterministic DDIM (Song, Meng &
// Ermon, ICLR 2021, eq. 12 with η = 0) that ignores y while sampling,
//
//	x̂₀ = (x_t − √(1−ᾱ_t)·ε_θ)/√ᾱ_t (clamped),  x_{t−1} = √ᾱ'·x̂₀ + √(1−ᾱ')·ε_θ,
//
// followed by pasting the measurement in at the end where A has a
// pseudo-inverse and y is noiseless: x ← x − A†(A x − y) (known pixels,
// block means, gray level replaced by the measured ones). Otherwise (blur,
// which has no A†; any noisy y, which pasting would copy the noise from)
// the result is the unconditional sample.
func DDIMPaste(be nn.Backend, prior Prior, p Problem, o Options) (*nn.Tensor, Stats, error) {
	const method = "ddim"
	if err := checkProblem(p); err != nil {
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
		nx := lin(be, []float64{math.Sqrt(an), math.Sqrt(1 - an)}, x0, eps)
		nn.Free(x, eps)
		x = nx
		err = onStep(o, k, x0)
		nn.Free(x0)
		if err == nil {
			x, err = done(be, x)
		}
		if err != nil {
			nn.Free(x)
			return nil, Stats{m.calls}, err
		}
	}
	if !p.Op.HasPinv() || p.SigmaY > 0 {
		return x, Stats{m.calls}, nil
	}
	out, err := project(be, p.Op, x, p.Y, 1)
	nn.Free(x)
	return out, Stats{m.calls}, err
}

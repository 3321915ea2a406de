package restore

import (
	"fmt"
	"math"

	"retrace/nn"
	"retrace/samplers"
)

// REDDiff is RED-Diff (Mardani, Song, Kautz & Vahdat, "A Variational
// Perspective on Solving Inverse Problems with Diffusion Models", ICLR
// 2024, Algorithm 1): the mean μ of a variational posterior is fitted by
// Adam, starting from μ = A†y (the blurred image for deblurring), over the
// timesteps from high noise to low. Per timestep t, with ε ~ N(0, I):
//
//	x_t = √ᾱ_t·μ + √(1−ᾱ_t)·ε                                       (eq. 3)
//	loss = w_t·⟨sg(ε_θ(x_t, t) − ε), μ⟩/n_x + ‖y − A μ‖²/(2σ²·n_y)   (eq. 12, as in the paper's code: means)
//	w_t = λ·√((1−ᾱ_t)/ᾱ_t)                                           (the inverse SNR^½ weighting, §4.3)
//
// sg is stop-gradient: the network is only evaluated, so the gradient is
//
//	∇_μ loss = w_t·(ε_θ − ε)/n_x + Aᵀ(A μ − y)/(σ²·n_y)
//
// and Adam (β = (0.9, 0.99), ε = 1e-8 as in the paper's code) takes one
// step per timestep, entirely with backend ops. n_x and n_y are the numbers
// of image and measurement elements; σ is Options.ObsSigma (default 1, the
// code's v_t = 1).
func REDDiff(be nn.Backend, prior Prior, p Problem, o Options) (*nn.Tensor, Stats, error) {
	const method = "reddiff"
	if err := checkProblem(p); err != nil {
		return nil, Stats{}, err
	}
	lr, lambda, sigma := o.LR, o.Lambda, o.ObsSigma
	if lr == 0 {
		lr = 0.1
	}
	if lambda == 0 {
		lambda = 0.25
	}
	if sigma == 0 {
		sigma = 1
	}
	if !(lr > 0) || !(lambda > 0) || !(sigma > 0) {
		return nil, Stats{}, fmt.Errorf("restore: reddiff: lr %v, λ %v and σ %v must be > 0", lr, lambda, sigma)
	}
	s, err := newSchedule(method, prior.Config, o.Steps)
	if err != nil {
		return nil, Stats{}, err
	}
	mu, err := Estimate(be, p.Op, p.Y)
	if err != nil {
		return nil, Stats{}, err
	}
	const b1, b2, adamEps = 0.9, 0.99, 1e-8
	nx, ny := float64(mu.Numel()), float64(p.Y.Numel())
	mom, vel := be.Zeros(p.Shape), be.Zeros(p.Shape)
	defer func() { nn.Free(mom, vel) }()
	m := &model{method: method, eps: prior.Eps}
	g := samplers.NewNoise(o.Seed)
	for k, t := range s.ts {
		at, _ := s.alphas(k)
		z := g.Tensor(be, p.Shape...)
		xt := be.Axpby(float32(math.Sqrt(at)), mu, float32(math.Sqrt(1-at)), z)
		eps, err := m.at(be, xt, t)
		nn.Free(xt)
		if err != nil {
			nn.Free(mu, z)
			return nil, Stats{m.calls}, err
		}
		wt := lambda * math.Sqrt((1-at)/at)
		amu, err := p.Op.A(be, mu)
		if err != nil {
			nn.Free(mu, z, eps)
			return nil, Stats{m.calls}, err
		}
		res := be.Binary(nn.Sub, amu, p.Y)
		nn.Free(amu)
		atr, err := p.Op.AT(be, res)
		nn.Free(res)
		if err != nil {
			nn.Free(mu, z, eps)
			return nil, Stats{m.calls}, err
		}
		d := be.Binary(nn.Sub, eps, z)
		nn.Free(eps, z)
		grad := be.Axpby(float32(wt/nx), d, float32(1/(sigma*sigma*ny)), atr)
		nn.Free(d, atr)
		// Adam (Kingma & Ba, Algorithm 1).
		step := float64(k + 1)
		nm := be.Axpby(b1, mom, 1-b1, grad)
		g2 := be.Unary(nn.Square, grad)
		nv := be.Axpby(b2, vel, 1-b2, g2)
		nn.Free(mom, vel, grad, g2)
		mom, vel = nm, nv
		vh := be.Affine(vel, float32(1/(1-math.Pow(b2, step))), 0)
		sq := be.Unary(nn.Sqrt, vh)
		den := be.Affine(sq, 1, adamEps)
		upd := be.Binary(nn.Div, mom, den)
		nmu := be.Axpby(1, mu, float32(-lr/(1-math.Pow(b1, step))), upd)
		nn.Free(vh, sq, den, upd, mu)
		mu = nmu
		if err := onStep(o, k, mu); err != nil {
			nn.Free(mu)
			return nil, Stats{m.calls}, err
		}
		if mu, err = done(be, mu); err != nil {
			return nil, Stats{m.calls}, err
		}
	}
	return mu, Stats{m.calls}, nil
}

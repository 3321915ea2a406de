package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// VPPredictorCorrector is the predictor–corrector sampler of Song et al.,
// "Score-Based Generative Modeling through Stochastic Differential
// Equations" (ICLR 2021), Algorithm 3 for the VP SDE, with the reverse
// diffusion predictor (eq. 46) and Langevin corrector (Algorithm 5) driven
// by an ε-prediction model through s_θ(x, t) = −ε_θ(x, t)/√(1−ᾱ_t).
// Between consecutive chosen timesteps t > s the discrete β is
// β = 1 − ᾱ_t/ᾱ_s (β_t itself when every timestep is used). Per timestep:
//
//	corrector (M times): g = s_θ(x, t), z ~ N(0, I),
//	  ε_L = 2·α·(r·‖z‖/‖g‖)²,  x ← x + ε_L·g + √(2ε_L)·z   (α = 1 − β)
//	predictor: x ← (2 − √(1−β))·x + β·s_θ(x, t) + √β·z
//
// (norms are per batch element, averaged over the batch, as in the paper's
// code). With Denoise the last predictor step adds no noise.
type VPPredictorCorrector struct {
	vpSchedule
	// SNR is the corrector's signal-to-noise ratio r (0.16 in the paper's
	// VP configs); CorrectorSteps is M (0 gives the predictor alone).
	SNR            float64
	CorrectorSteps int
	Denoise        bool
}

// NewVPPredictorCorrector prepares steps timesteps of cfg's schedule with
// r = 0.16, one corrector step and denoising.
func NewVPPredictorCorrector(cfg SchedulerConfig, steps int) (*VPPredictorCorrector, error) {
	s, err := newVPSchedule("vp_pc", cfg, steps)
	if err != nil {
		return nil, err
	}
	return &VPPredictorCorrector{vpSchedule: s, SNR: 0.16, CorrectorSteps: 1, Denoise: true}, nil
}

// Sample runs the sampler from x (standard normal at the first timestep;
// not freed) drawing noise from g, and returns the sample.
func (p *VPPredictorCorrector) Sample(be nn.Backend, model EpsModel, x *nn.Tensor, g *Noise) (*nn.Tensor, error) {
	const name = "vp_pc"
	if err := checkSample(name, model, x); err != nil {
		return nil, err
	}
	if g == nil {
		return nil, fmt.Errorf("%s: nil noise generator", name)
	}
	if !(p.SNR > 0) || p.CorrectorSteps < 0 {
		return nil, fmt.Errorf("%s: snr %v must be > 0 and corrector steps %d ≥ 0", name, p.SNR, p.CorrectorSteps)
	}
	x = retain(x)
	for k, t := range p.IntTimesteps {
		at, an := p.alphas(k)
		beta := 1 - at/an
		sq := math.Sqrt(1 - at) // s_θ = −ε/sq
		for range p.CorrectorSteps {
			eps, err := callEps(name, model, x, t)
			if err != nil {
				nn.Free(x)
				return nil, err
			}
			z := g.Tensor(be, x.Shape()...)
			nx := p.langevin(be, x, eps, z, 1-beta, sq)
			nn.Free(x, eps, z)
			x = nx
		}
		eps, err := callEps(name, model, x, t)
		if err != nil {
			nn.Free(x)
			return nil, err
		}
		// Reverse diffusion predictor (eq. 46).
		terms := []term{{2 - math.Sqrt(1-beta), x}, {-beta / sq, eps}}
		var z *nn.Tensor
		if !(p.Denoise && k == len(p.IntTimesteps)-1) {
			z = g.Tensor(be, x.Shape()...)
			terms = append(terms, term{math.Sqrt(beta), z})
		}
		nx := lin(be, terms...)
		nn.Free(x, eps, z)
		x = nx
		if err := be.Err(); err != nil {
			nn.Free(x)
			return nil, err
		}
	}
	return x, nil
}

// langevin is one corrector step (Algorithm 5) with g = −ε/sq; the step
// size depends on the norms, so it is computed on the device:
// q = Σ_b‖z_b‖ / Σ_b‖ε_b‖, ε_L = 2α·r²·sq²·q²,
// x + ε_L·g + √(2ε_L)·z = x − (2α·r²·sq)·q²·ε + (2r·sq·√α)·q·z.
func (p *VPPredictorCorrector) langevin(be nn.Backend, x, eps, z *nn.Tensor, alpha, sq float64) *nn.Tensor {
	q := be.Binary(nn.Div, batchNorms(be, z), batchNorms(be, eps))
	q2 := be.Binary(nn.Mul, q, q)
	ce := be.Affine(q2, float32(-2*alpha*p.SNR*p.SNR*sq), 0)
	cz := be.Affine(q, float32(2*p.SNR*sq*math.Sqrt(alpha)), 0)
	a := be.Binary(nn.Mul, eps, ce)
	b := be.Binary(nn.Mul, z, cz)
	xa := be.Binary(nn.Add, x, a)
	out := be.Binary(nn.Add, xa, b)
	nn.Free(q, q2, ce, cz, a, b, xa)
	return out
}

// batchNorms returns Σ_b ‖x_b‖₂ over the batch as a [1] tensor (the
// paper's mean of norms, up to the batch size that cancels in q).
func batchNorms(be nn.Backend, x *nn.Tensor) *nn.Tensor {
	var acc *nn.Tensor
	for b := range x.Dim(0) {
		xb := nn.Narrow(x, b, 1)
		sq := be.Unary(nn.Square, xb)
		s := be.Reduce(nn.Sum, sq)
		n := be.Unary(nn.Sqrt, s)
		nn.Free(xb, sq, s)
		if acc == nil {
			acc = n
			continue
		}
		na := be.Binary(nn.Add, acc, n)
		nn.Free(acc, n)
		acc = na
	}
	return acc
}

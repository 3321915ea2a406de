package samplers

import (
	"math"

	"retrace/nn"
)

// The single steps of VPPredictorCorrector, exported so that a caller can
// drive the loop itself and act between steps (e.g. the measurement
// projection of Song et al.'s inpainting and colorization, Appendix I).
// Sample is the same loop without anything in between.

// Levels returns the ᾱ of step k's timestep and of the level the predictor
// moves to (Final after the last step).
func (p *VPPredictorCorrector) Levels(k int) (at, an float64) { return p.alphas(k) }

// FinalAlpha is ᾱ after the last step (1 with set_alpha_to_one, else ᾱ_0).
func (p *VPPredictorCorrector) FinalAlpha() float64 { return p.Final }

// CorrectorStep is one Langevin corrector step (Algorithm 5) at step k
// from the model output eps = ε_θ(x, t_k) and standard-normal z.
func (p *VPPredictorCorrector) CorrectorStep(be nn.Backend, k int, x, eps, z *nn.Tensor) *nn.Tensor {
	at, an := p.alphas(k)
	beta := 1 - at/an
	return p.langevin(be, x, eps, z, 1-beta, math.Sqrt(1-at))
}

// PredictorStep is the reverse-diffusion predictor (eq. 46) at step k from
// eps = ε_θ(x, t_k); z (standard normal) may be nil for the noise-free last
// step of a Denoise run.
func (p *VPPredictorCorrector) PredictorStep(be nn.Backend, k int, x, eps, z *nn.Tensor) *nn.Tensor {
	at, an := p.alphas(k)
	beta := 1 - at/an
	terms := []term{{2 - math.Sqrt(1-beta), x}, {-beta / math.Sqrt(1-at), eps}}
	if z != nil {
		terms = append(terms, term{math.Sqrt(beta), z})
	}
	return lin(be, terms...)
}

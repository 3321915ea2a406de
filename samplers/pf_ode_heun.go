package samplers

import (
	"math"

	"retrace/nn"
)

// PFODEHeun solves the probability-flow ODE of the VP SDE (Song et al.,
// ICLR 2021, eq. 13: dx = [f(x,t) − ½g(t)²∇ₓlog p_t(x)]dt) with Heun's
// second-order method, for an ε-prediction model. Under the change of
// variables x̃ = x/√ᾱ, σ = √((1−ᾱ)/ᾱ) this ODE is dx̃/dσ = ε_θ(x, t)
// (Karras et al., NeurIPS 2022, eq. 4 with s(t) = √ᾱ), which Heun steps
// between the chosen timesteps (Karras Algorithm 1 without churn):
//
//	d₁ = ε_θ(x_k, t_k),  x̃′ = x̃_k + (σ_{k+1} − σ_k)·d₁
//	d₂ = ε_θ(√ᾱ_{k+1}·x̃′, t_{k+1}),  x̃_{k+1} = x̃_k + (σ_{k+1} − σ_k)·(d₁ + d₂)/2
//
// The last step, to the final ᾱ that has no model timestep, is Euler's,
// which is exactly a deterministic DDIM step: the method uses 2n−1 model
// calls for n steps and approaches DDIM's result as both converge to the
// ODE's solution.
type PFODEHeun struct {
	vpSchedule
}

// NewPFODEHeun prepares steps timesteps of cfg's schedule.
func NewPFODEHeun(cfg SchedulerConfig, steps int) (*PFODEHeun, error) {
	s, err := newVPSchedule("pf_ode", cfg, steps)
	if err != nil {
		return nil, err
	}
	return &PFODEHeun{s}, nil
}

// Sample integrates from x (at the first timestep; not freed) and returns
// the sample at the final ᾱ.
func (h *PFODEHeun) Sample(be nn.Backend, model EpsModel, x *nn.Tensor) (*nn.Tensor, error) {
	const name = "pf_ode"
	if err := checkSample(name, model, x); err != nil {
		return nil, err
	}
	x = retain(x)
	n := len(h.IntTimesteps)
	for k, t := range h.IntTimesteps {
		at, an := h.alphas(k)
		sa, sn := math.Sqrt(at), math.Sqrt(an)
		ds := math.Sqrt((1-an)/an) - math.Sqrt((1-at)/at)
		d1, err := callEps(name, model, x, t)
		if err != nil {
			nn.Free(x)
			return nil, err
		}
		// Euler: x′ = √ᾱ_{k+1}·(x/√ᾱ_k + Δσ·d₁).
		xe := lin(be, term{sn / sa, x}, term{sn * ds, d1})
		if k == n-1 {
			nn.Free(x, d1)
			x = xe
			break
		}
		d2, err := callEps(name, model, xe, h.IntTimesteps[k+1])
		if err != nil {
			nn.Free(x, d1, xe)
			return nil, err
		}
		nx := lin(be, term{sn / sa, x}, term{sn * ds / 2, d1}, term{sn * ds / 2, d2})
		nn.Free(x, d1, d2, xe)
		x = nx
		if err := be.Err(); err != nil {
			nn.Free(x)
			return nil, err
		}
	}
	if err := be.Err(); err != nil {
		nn.Free(x)
		return nil, err
	}
	return x, nil
}

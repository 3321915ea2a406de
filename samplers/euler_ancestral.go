package samplers

import (
	"math"

	"retrace/nn"
)

// EulerAncestral is the ancestral Euler sampler of Karras et al. (2022)
// as in k-diffusion's sample_euler_ancestral, with diffusers'
// EulerAncestralDiscreteScheduler semantics: split the step σ_k → σ_{k+1}
// into a deterministic Euler step down to
//
//	σ_up = √(σ_{k+1}²·(σ_k² − σ_{k+1}²)/σ_k²),  σ_down = √(σ_{k+1}² − σ_up²)
//
// and fresh noise σ_up·z (every step draws z, also the last where σ_up = 0).
type EulerAncestral struct {
	sigmaSchedule
}

// NewEulerAncestral builds the sampler from a scheduler config.
func NewEulerAncestral(cfg SchedulerConfig) (*EulerAncestral, error) {
	cfg.ClassName = "EulerAncestralDiscreteScheduler"
	cfg.FinalSigmasType = "zero" // not configurable in diffusers
	s, err := newSigmaSchedule("euler_ancestral", cfg)
	if err != nil {
		return nil, err
	}
	return &EulerAncestral{*s}, nil
}

// SetTimesteps implements Scheduler.
func (e *EulerAncestral) SetTimesteps(n int) error { return e.set("euler_ancestral", n) }

// Timesteps implements Scheduler.
func (e *EulerAncestral) Timesteps() []float32 { return e.TimestepsF }

// InitNoiseSigma implements Scheduler.
func (e *EulerAncestral) InitNoiseSigma() float32 { return e.initNoiseSigma() }

// ScaleModelInput implements Scheduler: x/√(σ_k²+1).
func (e *EulerAncestral) ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor {
	return e.scale(be, x, k)
}

// NeedsNoise implements Scheduler (every step).
func (e *EulerAncestral) NeedsNoise(k int) bool { return true }

// Step implements Scheduler.
func (e *EulerAncestral) Step(be nn.Backend, m *nn.Tensor, k int, x, noise *nn.Tensor) (*nn.Tensor, error) {
	if err := checkStep("euler_ancestral", len(e.TimestepsF), k, m, x); err != nil {
		return nil, err
	}
	if err := checkNoise("euler_ancestral", k, x, noise); err != nil {
		return nil, err
	}
	from, to := float64(e.Sigmas[k]), float64(e.Sigmas[k+1])
	up := math.Sqrt(to * to * (from*from - to*to) / (from * from))
	down := math.Sqrt(max(to*to-up*up, 0))
	c := e.x0(from)
	dt := down - from
	out := lin(be, term{1 + dt*(1-c[0])/from, x}, term{-dt * c[1] / from, m}, term{up, noise})
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

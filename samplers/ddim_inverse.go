package samplers

import (
	"fmt"

	"retrace/nn"
)

// DDIMInverse runs deterministic DDIM (Song et al. 2021, eq. 12 with η = 0)
// backwards, from a clean sample towards noise, with diffusers'
// DDIMInverseScheduler semantics (Mokady et al., "Null-text Inversion",
// 2023, eq. 4): ascending timesteps; step k goes from t_k − T//n (or the
// initial ᾱ = 1 / ᾱ_0 below zero) up to t_k, using the model output at t_k:
//
//	x_{t} = √ᾱ_t·x̂₀ + √(1−ᾱ_t)·ε̂,  x̂₀ = (x_{t−Δ} − √(1−ᾱ_{t−Δ})·ε̂)/√ᾱ_{t−Δ}.
//
// Only "leading" and "trailing" spacings exist there, as in diffusers.
type DDIMInverse struct {
	Config        SchedulerConfig
	AlphasCumprod []float32
	IntTimesteps  []int // ascending
	initial       float32
	ratio         int
}

// NewDDIMInverse builds the inverse scheduler from a scheduler config
// (typically the DDIM config of the model, as DDIMInverseScheduler.from_config).
func NewDDIMInverse(cfg SchedulerConfig) (*DDIMInverse, error) {
	cfg.ClassName = "DDIMInverseScheduler"
	cfg.Defaults()
	if err := checkCommon("ddim_inverse", cfg); err != nil {
		return nil, err
	}
	if _, _, err := predictX0Eps(cfg.PredictionType, 0.5); err != nil {
		return nil, fmt.Errorf("ddim_inverse: %w", err)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, err
	}
	d := &DDIMInverse{Config: cfg, AlphasCumprod: ac, initial: ac[0]}
	if *cfg.SetAlphaToOne {
		d.initial = 1
	}
	return d, nil
}

// SetTimesteps implements Scheduler.
func (d *DDIMInverse) SetTimesteps(n int) error {
	T := d.Config.NumTrainTimesteps
	if err := checkSteps("ddim_inverse", n, T); err != nil {
		return err
	}
	if s := d.Config.TimestepSpacing; s != "leading" && s != "trailing" {
		return fmt.Errorf("ddim_inverse: timestep_spacing %q is not supported (leading, trailing)", s)
	}
	ts, err := schedulerGrid("ddim_inverse", d.Config, n, true)
	if err != nil {
		return err
	}
	d.IntTimesteps, d.ratio = ts, T/n
	return nil
}

// Timesteps implements Scheduler.
func (d *DDIMInverse) Timesteps() []float32 { return intsToF32(d.IntTimesteps) }

// InitNoiseSigma implements Scheduler (1).
func (d *DDIMInverse) InitNoiseSigma() float32 { return 1 }

// ScaleModelInput implements Scheduler (identity).
func (d *DDIMInverse) ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor {
	return retain(x)
}

// NeedsNoise implements Scheduler (never).
func (d *DDIMInverse) NeedsNoise(k int) bool { return false }

// Step implements Scheduler.
func (d *DDIMInverse) Step(be nn.Backend, m *nn.Tensor, k int, x, _ *nn.Tensor) (*nn.Tensor, error) {
	if err := checkStep("ddim_inverse", len(d.IntTimesteps), k, m, x); err != nil {
		return nil, err
	}
	next := d.IntTimesteps[k]
	cur := min(next-d.ratio, d.Config.NumTrainTimesteps-1)
	at := float64(d.initial)
	if cur >= 0 {
		at = float64(d.AlphasCumprod[cur])
	}
	an := float64(d.AlphasCumprod[next])
	x0c, ec, _ := predictX0Eps(d.Config.PredictionType, at)
	sa, dir := sqrt(an), sqrt(1-an)
	var out *nn.Tensor
	if *d.Config.ClipSample {
		x0 := clampFree(be, lin(be, term{x0c[0], x}, term{x0c[1], m}), float32(d.Config.ClipSampleRange))
		out = lin(be, term{sa, x0}, term{dir * ec[0], x}, term{dir * ec[1], m})
		nn.Free(x0)
	} else {
		out = lin(be, term{sa*x0c[0] + dir*ec[0], x}, term{sa*x0c[1] + dir*ec[1], m})
	}
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// DDPM is ancestral sampling of Ho, Jain & Abbeel, "Denoising Diffusion
// Probabilistic Models" (NeurIPS 2020), with diffusers' DDPMScheduler
// semantics: the posterior mean of eq. 7 from the predicted x̂₀ (clipped
// with clip_sample), plus σ_t·z with the fixed_small variance β̃_t of
// eq. 7 (fixed_small, fixed_small_log) or β_t (fixed_large), where with
// skipped steps β_t = 1 − ᾱ_t/ᾱ_prev. No noise is added at t = 0.
type DDPM struct {
	Config        SchedulerConfig
	AlphasCumprod []float32
	IntTimesteps  []int
	ratio         int
}

// NewDDPM builds the sampler from a scheduler config.
func NewDDPM(cfg SchedulerConfig) (*DDPM, error) {
	cfg.ClassName = "DDPMScheduler"
	cfg.Defaults()
	if err := checkCommon("ddpm", cfg); err != nil {
		return nil, err
	}
	if _, _, err := predictX0Eps(cfg.PredictionType, 0.5); err != nil {
		return nil, fmt.Errorf("ddpm: %w", err)
	}
	switch *cfg.VarianceType {
	case "fixed_small", "fixed_small_log", "fixed_large":
	default:
		return nil, fmt.Errorf("ddpm: variance_type %q is not supported (fixed_small, fixed_small_log, fixed_large)", *cfg.VarianceType)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, err
	}
	return &DDPM{Config: cfg, AlphasCumprod: ac}, nil
}

// SetTimesteps implements Scheduler.
func (d *DDPM) SetTimesteps(n int) error {
	T := d.Config.NumTrainTimesteps
	if err := checkSteps("ddpm", n, T); err != nil {
		return err
	}
	ts, err := schedulerGrid("ddpm", d.Config, n, false)
	if err != nil {
		return err
	}
	d.IntTimesteps, d.ratio = ts, T/n
	return nil
}

// Timesteps implements Scheduler.
func (d *DDPM) Timesteps() []float32 { return intsToF32(d.IntTimesteps) }

// InitNoiseSigma implements Scheduler (1).
func (d *DDPM) InitNoiseSigma() float32 { return 1 }

// ScaleModelInput implements Scheduler (identity).
func (d *DDPM) ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor { return retain(x) }

// NeedsNoise implements Scheduler: every step with t > 0.
func (d *DDPM) NeedsNoise(k int) bool {
	return k >= 0 && k < len(d.IntTimesteps) && d.IntTimesteps[k] > 0
}

// Step implements Scheduler:
//
//	μ̃ = √ᾱ_prev·β_t/(1−ᾱ_t)·x̂₀ + √α_t·(1−ᾱ_prev)/(1−ᾱ_t)·x_t   (eq. 7)
//	x_prev = μ̃ + σ_t·z,  σ_t² = β̃_t = (1−ᾱ_prev)/(1−ᾱ_t)·β_t.
func (d *DDPM) Step(be nn.Backend, m *nn.Tensor, k int, x, noise *nn.Tensor) (*nn.Tensor, error) {
	if err := checkStep("ddpm", len(d.IntTimesteps), k, m, x); err != nil {
		return nil, err
	}
	t := d.IntTimesteps[k]
	if t > 0 {
		if err := checkNoise("ddpm", k, x, noise); err != nil {
			return nil, err
		}
	}
	at, ap := float64(d.AlphasCumprod[t]), 1.0
	if p := t - d.ratio; p >= 0 {
		ap = float64(d.AlphasCumprod[p])
	}
	bt, bp := 1-at, 1-ap
	alpha := at / ap
	beta := 1 - alpha
	cx0 := math.Sqrt(ap) * beta / bt
	cs := math.Sqrt(alpha) * bp / bt
	x0c, _, _ := predictX0Eps(d.Config.PredictionType, at)
	var out *nn.Tensor
	if *d.Config.ClipSample {
		x0 := clampFree(be, lin(be, term{x0c[0], x}, term{x0c[1], m}), float32(d.Config.ClipSampleRange))
		out = lin(be, term{cx0, x0}, term{cs, x})
		nn.Free(x0)
	} else {
		out = lin(be, term{cx0*x0c[0] + cs, x}, term{cx0 * x0c[1], m})
	}
	if t > 0 {
		variance := max(bp/bt*beta, 1e-20)
		std := math.Sqrt(variance)
		if *d.Config.VarianceType == "fixed_large" {
			std = math.Sqrt(beta)
		}
		n := be.Axpby(1, out, float32(std), noise)
		nn.Free(out)
		out = n
	}
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// DDIM is the DDIM sampler (Song, Meng & Ermon, "Denoising Diffusion
// Implicit Models", ICLR 2021) with diffusers' DDIMScheduler semantics:
// eq. 12 with σ_t(η) of eq. 16, epsilon / sample / v_prediction,
// clip_sample, set_alpha_to_one, steps_offset and the linspace / leading /
// trailing timestep spacings.
type DDIM struct {
	Config        SchedulerConfig
	AlphasCumprod []float32
	// IntTimesteps are the timesteps after SetTimesteps, descending.
	IntTimesteps []int
	// Eta is η of eq. 16 (0: deterministic DDIM, 1: DDPM-like variance);
	// diffusers passes it to step().
	Eta   float64
	final float32 // ᾱ used past t = 0 (1 with set_alpha_to_one)
	ratio int     // T // n, the distance to the previous timestep
}

// NewDDIM builds the sampler from a scheduler config.
func NewDDIM(cfg SchedulerConfig) (*DDIM, error) {
	if cfg.ClassName == "" {
		cfg.ClassName = "DDIMScheduler"
	}
	cfg.Defaults()
	if err := checkCommon("ddim", cfg); err != nil {
		return nil, err
	}
	if _, _, err := predictX0Eps(cfg.PredictionType, 0.5); err != nil {
		return nil, fmt.Errorf("ddim: %w", err)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, err
	}
	d := &DDIM{Config: cfg, AlphasCumprod: ac, final: ac[0]}
	if *cfg.SetAlphaToOne {
		d.final = 1
	}
	return d, nil
}

// SetTimesteps chooses n steps with the config's timestep_spacing.
func (d *DDIM) SetTimesteps(n int) error {
	T := d.Config.NumTrainTimesteps
	if err := checkSteps("ddim", n, T); err != nil {
		return err
	}
	ts, err := schedulerGrid("ddim", d.Config, n, false)
	if err != nil {
		return err
	}
	d.IntTimesteps, d.ratio = ts, T/n
	return nil
}

// Timesteps implements Scheduler.
func (d *DDIM) Timesteps() []float32 { return intsToF32(d.IntTimesteps) }

// InitNoiseSigma implements Scheduler (1).
func (d *DDIM) InitNoiseSigma() float32 { return 1 }

// ScaleModelInput implements Scheduler (identity).
func (d *DDIM) ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor { return retain(x) }

// NeedsNoise implements Scheduler: only η > 0 draws noise.
func (d *DDIM) NeedsNoise(k int) bool { return d.Eta > 0 }

// alphas returns ᾱ_t and ᾱ_prev for timestep t (prev = t − T//n).
func (d *DDIM) alphas(t int) (at, ap float64) {
	at = float64(d.AlphasCumprod[t])
	ap = float64(d.final)
	if p := t - d.ratio; p >= 0 {
		ap = float64(d.AlphasCumprod[p])
	}
	return at, ap
}

// Step implements Scheduler: eq. 12,
//
//	x_prev = √ᾱ_prev·x̂₀ + √(1−ᾱ_prev−σ²)·ε̂ + σ·z,
//	σ = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev)   (eq. 16)
//
// with x̂₀ clipped to ±clip_sample_range when clip_sample is set.
func (d *DDIM) Step(be nn.Backend, m *nn.Tensor, k int, x, noise *nn.Tensor) (*nn.Tensor, error) {
	if err := checkStep("ddim", len(d.IntTimesteps), k, m, x); err != nil {
		return nil, err
	}
	if d.Eta > 0 {
		if err := checkNoise("ddim", k, x, noise); err != nil {
			return nil, err
		}
	}
	at, ap := d.alphas(d.IntTimesteps[k])
	x0c, ec, _ := predictX0Eps(d.Config.PredictionType, at)
	variance := (1 - ap) / (1 - at) * (1 - at/ap)
	std := d.Eta * math.Sqrt(variance)
	dir := math.Sqrt(1 - ap - std*std)
	sa := math.Sqrt(ap)
	var out *nn.Tensor
	if *d.Config.ClipSample {
		r := float32(d.Config.ClipSampleRange)
		x0 := lin(be, term{x0c[0], x}, term{x0c[1], m})
		x0 = clampFree(be, x0, r)
		out = lin(be, term{sa, x0}, term{dir * ec[0], x}, term{dir * ec[1], m})
		nn.Free(x0)
	} else {
		out = lin(be, term{sa*x0c[0] + dir*ec[0], x}, term{sa*x0c[1] + dir*ec[1], m})
	}
	if d.Eta > 0 {
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

// clampFree clamps x to ±r and frees x.
func clampFree(be nn.Backend, x *nn.Tensor, r float32) *nn.Tensor {
	c := be.Clamp(x, -r, r)
	nn.Free(x)
	return c
}

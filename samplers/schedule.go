// Package samplers holds retrace's schedules, samplers, inversions and
// pipelines. Formulas live in Go (one method per file, citing its paper or
// the diffusers scheduler it mirrors); per-element updates run as backend
// ops (WGSL kernels on the GPU), so sampling needs no CPU round trip per
// step.
package samplers

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// SchedulerConfig is a diffusers scheduler_config.json. Zero values mean
// the diffusers default where one exists (see Defaults).
type SchedulerConfig struct {
	ClassName           string    `json:"_class_name"`
	NumTrainTimesteps   int       `json:"num_train_timesteps"`
	BetaStart           float64   `json:"beta_start"`
	BetaEnd             float64   `json:"beta_end"`
	BetaSchedule        string    `json:"beta_schedule"`
	TrainedBetas        []float64 `json:"trained_betas"`
	ClipSample          *bool     `json:"clip_sample"`
	ClipSampleRange     float64   `json:"clip_sample_range"`
	SetAlphaToOne       *bool     `json:"set_alpha_to_one"`
	StepsOffset         int       `json:"steps_offset"`
	PredictionType      string    `json:"prediction_type"`
	TimestepSpacing     string    `json:"timestep_spacing"`
	Thresholding        bool      `json:"thresholding"`
	RescaleBetasZeroSNR bool      `json:"rescale_betas_zero_snr"`
}

// Defaults fills diffusers' DDIMScheduler defaults.
func (c *SchedulerConfig) Defaults() {
	if c.NumTrainTimesteps == 0 {
		c.NumTrainTimesteps = 1000
	}
	if c.BetaStart == 0 {
		c.BetaStart = 0.0001
	}
	if c.BetaEnd == 0 {
		c.BetaEnd = 0.02
	}
	if c.BetaSchedule == "" {
		c.BetaSchedule = "linear"
	}
	if c.ClipSample == nil {
		t := true
		c.ClipSample = &t
	}
	if c.ClipSampleRange == 0 {
		c.ClipSampleRange = 1
	}
	if c.SetAlphaToOne == nil {
		t := true
		c.SetAlphaToOne = &t
	}
	if c.PredictionType == "" {
		c.PredictionType = "epsilon"
	}
	if c.TimestepSpacing == "" {
		c.TimestepSpacing = "leading"
	}
}

// LoadSchedulerConfig reads scheduler_config.json.
func LoadSchedulerConfig(path string) (SchedulerConfig, error) {
	var c SchedulerConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// AlphasCumprod returns ᾱ_t for t = 0 … T−1, computed in float32 in the
// same order as diffusers (torch float32 linspace, square, 1 − β, cumprod).
func (c SchedulerConfig) AlphasCumprod() ([]float32, error) {
	n := c.NumTrainTimesteps
	betas := make([]float32, n)
	switch c.BetaSchedule {
	case "linear":
		linspace32(betas, c.BetaStart, c.BetaEnd)
	case "scaled_linear":
		linspace32(betas, math.Sqrt(c.BetaStart), math.Sqrt(c.BetaEnd))
		for i, b := range betas {
			betas[i] = b * b
		}
	case "squaredcos_cap_v2":
		// Nichol & Dhariwal (2021), eq. 17, with β capped at 0.999.
		abar := func(t float64) float64 { return math.Pow(math.Cos((t+0.008)/1.008*math.Pi/2), 2) }
		for i := range betas {
			t1, t2 := float64(i)/float64(n), float64(i+1)/float64(n)
			betas[i] = float32(math.Min(1-abar(t2)/abar(t1), 0.999))
		}
	default:
		if len(c.TrainedBetas) == n {
			for i, b := range c.TrainedBetas {
				betas[i] = float32(b)
			}
			break
		}
		return nil, fmt.Errorf("scheduler: beta_schedule %q is not supported", c.BetaSchedule)
	}
	ac := make([]float32, n)
	p := float32(1)
	for i, b := range betas {
		p *= 1 - b
		ac[i] = p
	}
	return ac, nil
}

// linspace32 mirrors torch.linspace(start, end, n, dtype=float32):
// start + i·step for the first half, end − (n−1−i)·step for the rest.
func linspace32(out []float32, start, end float64) {
	n := len(out)
	if n == 1 {
		out[0] = float32(start)
		return
	}
	s, e := float32(start), float32(end)
	step := (e - s) / float32(n-1)
	half := n / 2
	for i := range out {
		if i < half {
			out[i] = s + step*float32(i)
		} else {
			out[i] = e - step*float32(n-1-i)
		}
	}
}

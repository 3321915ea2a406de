// Package samplers holds retrace's schedules, samplers, inversions and
// pipelines. Formulas live in Go (one method per file, citing its paper or
// the diffusers scheduler it mirrors); per-element updates run as backend
// ops (WGSL kernels on the GPU), so sampling needs no CPU round trip per
// step.
package samplers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// SchedulerConfig is a diffusers scheduler_config.json: the union of the
// fields of the schedulers in this package. Fields a JSON file leaves out
// take the diffusers default of its _class_name (see Defaults); the
// pointer fields tell "absent" from false/zero where the default is not.
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

	// DDPMScheduler.
	VarianceType *string `json:"variance_type"`
	// PNDMScheduler.
	SkipPRKSteps bool `json:"skip_prk_steps"`
	// EulerDiscreteScheduler (and DPMSolverMultistepScheduler).
	InterpolationType string   `json:"interpolation_type"`
	UseKarrasSigmas   bool     `json:"use_karras_sigmas"`
	TimestepType      string   `json:"timestep_type"`
	FinalSigmasType   string   `json:"final_sigmas_type"`
	SigmaMin          *float64 `json:"sigma_min"`
	SigmaMax          *float64 `json:"sigma_max"`
	// DPMSolverMultistepScheduler.
	SolverOrder      int      `json:"solver_order"`
	AlgorithmType    string   `json:"algorithm_type"`
	SolverType       string   `json:"solver_type"`
	LowerOrderFinal  *bool    `json:"lower_order_final"`
	EulerAtFinal     bool     `json:"euler_at_final"`
	LambdaMinClipped *float64 `json:"lambda_min_clipped"`
	UseLuLambdas     bool     `json:"use_lu_lambdas"`
}

// Defaults fills the diffusers __init__ defaults of c.ClassName (DDIM's
// when it is empty).
func (c *SchedulerConfig) Defaults() {
	t, f := true, false
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
		c.ClipSample = &t
	}
	if c.ClipSampleRange == 0 {
		c.ClipSampleRange = 1
	}
	if c.SetAlphaToOne == nil {
		// PNDMScheduler is the one whose default is False.
		if c.ClassName == "PNDMScheduler" {
			c.SetAlphaToOne = &f
		} else {
			c.SetAlphaToOne = &t
		}
	}
	if c.PredictionType == "" {
		c.PredictionType = "epsilon"
	}
	if c.TimestepSpacing == "" {
		switch c.ClassName {
		case "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler":
			c.TimestepSpacing = "linspace"
		default:
			c.TimestepSpacing = "leading"
		}
	}
	if c.VarianceType == nil {
		v := "fixed_small"
		c.VarianceType = &v
	}
	if c.InterpolationType == "" {
		c.InterpolationType = "linear"
	}
	if c.TimestepType == "" {
		c.TimestepType = "discrete"
	}
	if c.FinalSigmasType == "" {
		c.FinalSigmasType = "zero"
	}
	if c.SolverOrder == 0 {
		c.SolverOrder = 2
	}
	if c.AlgorithmType == "" {
		c.AlgorithmType = "dpmsolver++"
	}
	if c.SolverType == "" {
		c.SolverType = "midpoint"
	}
	if c.LowerOrderFinal == nil {
		c.LowerOrderFinal = &t
	}
	if c.LambdaMinClipped == nil {
		l := math.Inf(-1)
		c.LambdaMinClipped = &l
	}
}

// LoadSchedulerConfig reads scheduler_config.json.
func LoadSchedulerConfig(path string) (SchedulerConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return SchedulerConfig{}, err
	}
	c, err := ParseSchedulerConfig(b)
	if err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseSchedulerConfig decodes a scheduler config. Python's json module
// writes the non-JSON tokens NaN, Infinity and -Infinity (diffusers saves
// "lambda_min_clipped": -Infinity); outside strings they are read as null,
// ±math.MaxFloat64 and −math.MaxFloat64.
func ParseSchedulerConfig(b []byte) (SchedulerConfig, error) {
	var c SchedulerConfig
	err := json.Unmarshal(pythonJSON(b), &c)
	return c, err
}

// pythonJSON replaces the bare tokens NaN, Infinity and -Infinity that
// Python's json.dumps emits (outside string literals) by JSON values.
func pythonJSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inStr := false
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if inStr {
			out = append(out, ch)
			if ch == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if ch == '"' {
				inStr = false
			}
			continue
		}
		switch {
		case ch == '"':
			inStr = true
			out = append(out, ch)
		case bytes.HasPrefix(b[i:], []byte("-Infinity")):
			out = append(out, "-1.7976931348623157e308"...)
			i += len("-Infinity") - 1
		case bytes.HasPrefix(b[i:], []byte("Infinity")):
			out = append(out, "1.7976931348623157e308"...)
			i += len("Infinity") - 1
		case bytes.HasPrefix(b[i:], []byte("NaN")):
			out = append(out, "null"...)
			i += len("NaN") - 1
		default:
			out = append(out, ch)
		}
	}
	return out
}

// Betas returns β_t for t = 0 … T−1 in float32 as diffusers computes them
// (torch float32 linspace; squaredcos_cap_v2 in float64 then float32),
// rescaled to zero terminal SNR when rescale_betas_zero_snr is set.
func (c SchedulerConfig) Betas() ([]float32, error) {
	n := c.NumTrainTimesteps
	if n <= 0 {
		return nil, fmt.Errorf("scheduler: num_train_timesteps %d must be positive", n)
	}
	betas := make([]float32, n)
	switch {
	case c.TrainedBetas != nil:
		if len(c.TrainedBetas) != n {
			return nil, fmt.Errorf("scheduler: %d trained_betas for num_train_timesteps %d", len(c.TrainedBetas), n)
		}
		for i, b := range c.TrainedBetas {
			betas[i] = float32(b)
		}
	case c.BetaSchedule == "linear":
		linspace32(betas, c.BetaStart, c.BetaEnd)
	case c.BetaSchedule == "scaled_linear":
		linspace32(betas, math.Sqrt(c.BetaStart), math.Sqrt(c.BetaEnd))
		for i, b := range betas {
			betas[i] = b * b
		}
	case c.BetaSchedule == "squaredcos_cap_v2":
		// Nichol & Dhariwal (2021), eq. 17, with β capped at 0.999.
		abar := func(t float64) float64 { return math.Pow(math.Cos((t+0.008)/1.008*math.Pi/2), 2) }
		for i := range betas {
			t1, t2 := float64(i)/float64(n), float64(i+1)/float64(n)
			betas[i] = float32(math.Min(1-abar(t2)/abar(t1), 0.999))
		}
	default:
		return nil, fmt.Errorf("scheduler: beta_schedule %q is not supported (linear, scaled_linear, squaredcos_cap_v2 or trained_betas)", c.BetaSchedule)
	}
	if c.RescaleBetasZeroSNR {
		rescaleZeroTerminalSNR(betas)
	}
	return betas, nil
}

// AlphasCumprod returns ᾱ_t for t = 0 … T−1 as diffusers computes them on
// the CPU: float32 betas, α = 1 − β in float32, cumprod accumulated in
// float64 and rounded per element.
func (c SchedulerConfig) AlphasCumprod() ([]float32, error) {
	betas, err := c.Betas()
	if err != nil {
		return nil, err
	}
	// torch.cumprod on the CPU accumulates in float64 (acc_type) and
	// rounds each output to float32.
	ac := make([]float32, len(betas))
	p := 1.0
	for i, b := range betas {
		p *= float64(1 - b)
		ac[i] = float32(p)
	}
	return ac, nil
}

// rescaleZeroTerminalSNR is Lin et al., "Common Diffusion Noise Schedules
// and Sample Steps are Flawed" (2023), Algorithm 1, in float32 like
// diffusers: shift √ᾱ so that √ᾱ_T = 0, scale so that √ᾱ_0 is kept.
func rescaleZeroTerminalSNR(betas []float32) {
	n := len(betas)
	s := make([]float32, n)
	p := float32(1)
	for i, b := range betas {
		p *= 1 - b
		s[i] = float32(math.Sqrt(float64(p)))
	}
	s0, sT := s[0], s[n-1]
	scale := s0 / (s0 - sT)
	ab := make([]float32, n)
	for i := range s {
		v := (s[i] - sT) * scale
		ab[i] = v * v
	}
	betas[0] = 1 - ab[0]
	for i := 1; i < n; i++ {
		betas[i] = 1 - ab[i]/ab[i-1]
	}
}

// linspace32 mirrors torch.linspace(start, end, n, dtype=float32) as the
// x86-64 CPU kernel of the reference torch (1.13, AVX2 build) computes it:
// step = (end − start)/(n − 1) in float32; values are produced 8 at a time
// (two 8-wide vectors per loop, a scalar tail for the last < 16), each
// vector from a base fma(step, i, start) for i < n/2, else
// fma(−step, n−1−i, end) (GCC contracts these to FMA), plus j·step for
// lane j. The golden betas match this bit for bit.
func linspace32(out []float32, start, end float64) {
	n := len(out)
	if n == 1 {
		out[0] = float32(start)
		return
	}
	s, e := float32(start), float32(end)
	step := (e - s) / float32(n-1)
	half := n / 2
	at := func(i int) float32 {
		if i < half {
			return fma32(step, float32(i), s)
		}
		return fma32(-step, float32(n-1-i), e)
	}
	const w = 8
	i := 0
	for ; i <= n-2*w; i += w {
		base := at(i)
		for j := 0; j < w; j++ {
			out[i+j] = base + float32(float32(j)*step)
		}
	}
	for ; i < n; i++ {
		out[i] = at(i)
	}
}

// fma32 is the float32 fused multiply-add a·b + c (through float64: the
// product is exact there).
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

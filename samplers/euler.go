package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// Euler is Euler's method on the probability-flow ODE in Karras et al.,
// "Elucidating the Design Space of Diffusion-Based Generative Models"
// (NeurIPS 2022), Algorithm 2 with S_churn = 0, with diffusers'
// EulerDiscreteScheduler semantics: x lives in the σ-parameterisation
// x = x₀ + σ·ε (σ = √((1−ᾱ)/ᾱ)), the model sees x/√(σ²+1) at a fractional
// timestep, and
//
//	d = (x − x̂₀)/σ_k,  x_{k+1} = x + (σ_{k+1} − σ_k)·d   (Karras eq. 5 / Alg. 2).
type Euler struct {
	Config        SchedulerConfig
	AlphasCumprod []float32
	// TimestepsF and Sigmas are set by SetTimesteps (Sigmas has one more
	// entry, the final σ).
	TimestepsF []float32
	Sigmas     []float32
	trainSig   []float32
}

// NewEuler builds the sampler from a scheduler config.
func NewEuler(cfg SchedulerConfig) (*Euler, error) {
	cfg.ClassName = "EulerDiscreteScheduler"
	e, err := newSigmaSchedule("euler", cfg)
	if err != nil {
		return nil, err
	}
	return (*Euler)(e), nil
}

// sigmaSchedule is the σ schedule shared by the Euler-type schedulers.
type sigmaSchedule Euler

func newSigmaSchedule(name string, cfg SchedulerConfig) (*sigmaSchedule, error) {
	cfg.Defaults()
	if err := checkCommon(name, cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.PredictionType != "epsilon" && cfg.PredictionType != "v_prediction" &&
		!(cfg.PredictionType == "sample" && cfg.ClassName == "EulerDiscreteScheduler"):
		return nil, fmt.Errorf("%s: prediction_type %q is not supported", name, cfg.PredictionType)
	case cfg.UseKarrasSigmas:
		return nil, fmt.Errorf("%s: use_karras_sigmas is not supported", name)
	case cfg.InterpolationType != "linear":
		return nil, fmt.Errorf("%s: interpolation_type %q is not supported (linear)", name, cfg.InterpolationType)
	case cfg.TimestepType != "discrete":
		return nil, fmt.Errorf("%s: timestep_type %q is not supported (discrete)", name, cfg.TimestepType)
	case cfg.FinalSigmasType != "zero" && cfg.FinalSigmasType != "sigma_min":
		return nil, fmt.Errorf("%s: final_sigmas_type %q is not supported (zero, sigma_min)", name, cfg.FinalSigmasType)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, err
	}
	if cfg.RescaleBetasZeroSNR {
		ac[len(ac)-1] = 1.0 / (1 << 24) // diffusers keeps σ_T finite
	}
	return &sigmaSchedule{Config: cfg, AlphasCumprod: ac, trainSig: trainSigmas(ac)}, nil
}

// set chooses n float timesteps (diffusers' linspace / leading / trailing in
// float32) and σ by linear interpolation of the training σ's, then the
// final σ (0, or σ_0 for final_sigmas_type sigma_min).
func (s *sigmaSchedule) set(name string, n int) error {
	c := s.Config
	T := c.NumTrainTimesteps
	if err := checkSteps(name, n, T); err != nil {
		return err
	}
	var ts []float32
	switch c.TimestepSpacing {
	case "linspace":
		v := numpyLinspace(0, float64(T-1), n)
		for i := n - 1; i >= 0; i-- {
			ts = append(ts, float32(v[i]))
		}
	case "leading":
		r := T / n
		for i := n - 1; i >= 0; i-- {
			ts = append(ts, float32(i*r)+float32(c.StepsOffset))
		}
	case "trailing":
		for _, v := range numpyArangeDown(float64(T), float64(T)/float64(n)) {
			ts = append(ts, float32(math.RoundToEven(v))-1)
		}
	default:
		return fmt.Errorf("%s: timestep_spacing %q is not supported (linspace, leading, trailing)", name, c.TimestepSpacing)
	}
	for _, t := range ts {
		if t < 0 || t > float32(T-1) {
			return fmt.Errorf("%s: timestep %v (steps_offset %d) outside [0, %d]", name, t, c.StepsOffset, T-1)
		}
	}
	sig := make([]float32, 0, len(ts)+1)
	for _, t := range ts {
		sig = append(sig, float32(interpSigma(float64(t), s.trainSig)))
	}
	last := float32(0)
	if c.FinalSigmasType == "sigma_min" {
		a := s.AlphasCumprod[0]
		last = float32(math.Sqrt(float64((1 - a) / a)))
	}
	s.TimestepsF, s.Sigmas = ts, append(sig, last)
	return nil
}

// initNoiseSigma is max σ, or √(σ_max²+1) for leading spacing (float32).
func (s *sigmaSchedule) initNoiseSigma() float32 {
	var m float32
	for _, v := range s.Sigmas {
		m = max(m, v)
	}
	if s.Sigmas == nil {
		m = s.trainSig[len(s.trainSig)-1]
	}
	if s.Config.TimestepSpacing == "linspace" || s.Config.TimestepSpacing == "trailing" {
		return m
	}
	return float32(math.Sqrt(float64(m*m + 1)))
}

// scale returns x/√(σ_k²+1).
func (s *sigmaSchedule) scale(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor {
	if k < 0 || k >= len(s.TimestepsF) {
		return retain(x) // Step reports the bad index
	}
	sg := float64(s.Sigmas[k])
	return be.Affine(x, float32(1/math.Sqrt(sg*sg+1)), 0)
}

// x0 returns the coefficients of (x, m) in x̂₀ at σ (Karras Table 1 for
// v_prediction: c_skip = 1/(σ²+1), c_out = −σ/√(σ²+1)).
func (s *sigmaSchedule) x0(sg float64) [2]float64 {
	switch s.Config.PredictionType {
	case "sample":
		return [2]float64{0, 1}
	case "v_prediction":
		return [2]float64{1 / (sg*sg + 1), -sg / math.Sqrt(sg*sg+1)}
	}
	return [2]float64{1, -sg}
}

// SetTimesteps implements Scheduler.
func (e *Euler) SetTimesteps(n int) error { return (*sigmaSchedule)(e).set("euler", n) }

// Timesteps implements Scheduler.
func (e *Euler) Timesteps() []float32 { return e.TimestepsF }

// InitNoiseSigma implements Scheduler.
func (e *Euler) InitNoiseSigma() float32 { return (*sigmaSchedule)(e).initNoiseSigma() }

// ScaleModelInput implements Scheduler: x/√(σ_k²+1).
func (e *Euler) ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor {
	return (*sigmaSchedule)(e).scale(be, x, k)
}

// NeedsNoise implements Scheduler (never: S_churn = 0).
func (e *Euler) NeedsNoise(k int) bool { return false }

// Step implements Scheduler.
func (e *Euler) Step(be nn.Backend, m *nn.Tensor, k int, x, _ *nn.Tensor) (*nn.Tensor, error) {
	if err := checkStep("euler", len(e.TimestepsF), k, m, x); err != nil {
		return nil, err
	}
	s, sn := float64(e.Sigmas[k]), float64(e.Sigmas[k+1])
	c := (*sigmaSchedule)(e).x0(s)
	// d = (x − x̂₀)/σ = ((1−c_x)·x − c_m·m)/σ; x + (σ_next − σ)·d.
	dt := sn - s
	out := lin(be, term{1 + dt*(1-c[0])/s, x}, term{-dt * c[1] / s, m})
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

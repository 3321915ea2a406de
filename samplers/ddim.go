package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// DDIM is the deterministic DDIM sampler (Song et al., "Denoising
// Diffusion Implicit Models", 2021, eq. 12 with η = 0), with diffusers'
// DDIMScheduler semantics. (Minimal: epsilon prediction, η = 0, no
// clipping; the full scheduler set is in the samplers issue.)
type DDIM struct {
	Config        SchedulerConfig
	AlphasCumprod []float32
	Timesteps     []int
	final         float32
	stepRatio     int
}

// NewDDIM builds the sampler from a scheduler config.
func NewDDIM(cfg SchedulerConfig) (*DDIM, error) {
	cfg.Defaults()
	if cfg.PredictionType != "epsilon" {
		return nil, fmt.Errorf("ddim: prediction_type %q is not supported yet", cfg.PredictionType)
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
	if n <= 0 || n > T {
		return fmt.Errorf("ddim: %d steps (want 1…%d)", n, T)
	}
	d.Timesteps = d.Timesteps[:0]
	switch d.Config.TimestepSpacing {
	case "leading":
		r := T / n
		for i := n - 1; i >= 0; i-- {
			d.Timesteps = append(d.Timesteps, i*r+d.Config.StepsOffset)
		}
		d.stepRatio = r
	case "trailing":
		r := float64(T) / float64(n)
		for i := n; i >= 1; i-- {
			d.Timesteps = append(d.Timesteps, int(math.Round(float64(i)*r))-1)
		}
		d.stepRatio = T / n
	default:
		return fmt.Errorf("ddim: timestep_spacing %q is not supported yet", d.Config.TimestepSpacing)
	}
	return nil
}

// Step returns x_{t−Δ} from x_t and the predicted noise eps:
// x0 = (x − √(1−ᾱ_t)·ε)/√ᾱ_t, x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε.
func (d *DDIM) Step(be nn.Backend, eps *nn.Tensor, t int, x *nn.Tensor) *nn.Tensor {
	at := float64(d.AlphasCumprod[t])
	ap := float64(d.final)
	if p := t - d.stepRatio; p >= 0 {
		ap = float64(d.AlphasCumprod[p])
	}
	// Coefficients of x and ε after substituting x0.
	cx := math.Sqrt(ap) / math.Sqrt(at)
	ce := math.Sqrt(1-ap) - math.Sqrt(ap)*math.Sqrt(1-at)/math.Sqrt(at)
	return be.Axpby(float32(cx), x, float32(ce), eps)
}

package samplers

import (
	"fmt"
	"slices"

	"retrace/nn"
)

// EpsModel predicts the noise ε for sample x at a (possibly fractional)
// training timestep t, e.g. an nn.UNet2DModel's Forward. The returned
// tensor belongs to the caller.
type EpsModel func(x *nn.Tensor, t float32) (*nn.Tensor, error)

// vpSchedule is the discretised VP SDE (Song et al., "Score-Based
// Generative Modeling through Stochastic Differential Equations", ICLR
// 2021, eq. 11) of an ε-prediction model trained with ᾱ_t: the descending
// timesteps chosen like DDIM (timestep_spacing, steps_offset), and ᾱ after
// the last one (1 with set_alpha_to_one, else ᾱ_0).
type vpSchedule struct {
	AlphasCumprod []float32
	IntTimesteps  []int
	Final         float64
}

func newVPSchedule(name string, cfg SchedulerConfig, steps int) (vpSchedule, error) {
	d, err := NewDDIM(cfg)
	if err != nil {
		return vpSchedule{}, fmt.Errorf("%s: %w", name, err)
	}
	if d.Config.PredictionType != "epsilon" {
		return vpSchedule{}, fmt.Errorf("%s: prediction_type %q is not supported (epsilon)", name, d.Config.PredictionType)
	}
	if err := d.SetTimesteps(steps); err != nil {
		return vpSchedule{}, fmt.Errorf("%s: %w", name, err)
	}
	return vpSchedule{AlphasCumprod: d.AlphasCumprod, IntTimesteps: d.IntTimesteps, Final: float64(d.final)}, nil
}

// alphas returns ᾱ at step k and at the next step (Final after the last).
func (s vpSchedule) alphas(k int) (at, an float64) {
	at = float64(s.AlphasCumprod[s.IntTimesteps[k]])
	an = s.Final
	if k+1 < len(s.IntTimesteps) {
		an = float64(s.AlphasCumprod[s.IntTimesteps[k+1]])
	}
	return at, an
}

// callEps runs the model and checks its output shape against x.
func callEps(name string, model EpsModel, x *nn.Tensor, t int) (*nn.Tensor, error) {
	eps, err := model(x, float32(t))
	if err != nil {
		return nil, fmt.Errorf("%s: model at t=%d: %w", name, t, err)
	}
	if eps == nil || !slices.Equal(eps.Shape(), x.Shape()) {
		nn.Free(eps)
		return nil, fmt.Errorf("%s: model output %v at t=%d, want shape %v", name, eps, t, x.Shape())
	}
	return eps, nil
}

func checkSample(name string, model EpsModel, x *nn.Tensor) error {
	if model == nil {
		return fmt.Errorf("%s: nil model", name)
	}
	if x == nil || x.Rank() == 0 || x.Numel() == 0 {
		return fmt.Errorf("%s: sample %v must be a non-empty [B, ...] tensor", name, x)
	}
	return nil
}

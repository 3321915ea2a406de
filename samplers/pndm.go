package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// PNDM is the pseudo linear multistep method (PLMS) of Liu et al.,
// "Pseudo Numerical Methods for Diffusion Models on Manifolds" (ICLR
// 2022), with diffusers' PNDMScheduler semantics for skip_prk_steps = true
// (the Stable Diffusion 1.x default): the transfer φ of eq. 11
//
//	x_prev = √(ᾱ_prev/ᾱ_t)·x − (ᾱ_prev − ᾱ_t)·ε′ /
//	         (ᾱ_t·√(1−ᾱ_prev) + √(ᾱ_t·(1−ᾱ_t)·ᾱ_prev))
//
// with ε′ the linear multistep combination of eq. 12 (Adams–Bashforth
// orders 1–4: ε, (3ε₁−ε₂)/2, (23ε₁−16ε₂+5ε₃)/12,
// (55ε₁−59ε₂+37ε₃−9ε₄)/24). Without Runge–Kutta warm-up, diffusers
// evaluates the model twice at the first timestep: step 0 is an Euler
// transfer from t₀, step 1 redoes it from the same sample with the mean of
// both outputs (Heun), so n > 1 steps have n+1 timesteps.
type PNDM struct {
	Config        SchedulerConfig
	AlphasCumprod []float32
	IntTimesteps  []int
	final         float32
	ratio         int
	ets           []*nn.Tensor // last ≤ 4 model outputs (as ε)
	curSample     *nn.Tensor
	next          int
}

// NewPNDM builds the sampler from a scheduler config.
func NewPNDM(cfg SchedulerConfig) (*PNDM, error) {
	cfg.ClassName = "PNDMScheduler"
	cfg.Defaults()
	if err := checkCommon("pndm", cfg); err != nil {
		return nil, err
	}
	if !cfg.SkipPRKSteps {
		return nil, fmt.Errorf("pndm: skip_prk_steps false (Runge–Kutta warm-up) is not supported")
	}
	if cfg.PredictionType != "epsilon" && cfg.PredictionType != "v_prediction" {
		return nil, fmt.Errorf("pndm: prediction_type %q is not supported (epsilon, v_prediction)", cfg.PredictionType)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, err
	}
	p := &PNDM{Config: cfg, AlphasCumprod: ac, final: ac[0]}
	if *cfg.SetAlphaToOne {
		p.final = 1
	}
	return p, nil
}

// SetTimesteps implements Scheduler: the spaced timesteps t₀ > t₁ > … with
// t₀ repeated (n+1 entries).
func (p *PNDM) SetTimesteps(n int) error {
	c := p.Config
	T := c.NumTrainTimesteps
	if err := checkSteps("pndm", n, T); err != nil {
		return err
	}
	ts, err := schedulerGrid("pndm", c, n, false)
	if err != nil {
		return err
	}
	// diffusers: concat(_t[:-1], _t[-2:-1], _t[-1:])[::-1] on ascending _t.
	// (With one step there is a single timestep and no Heun correction.)
	out := []int{ts[0]}
	if len(ts) > 1 {
		out = append(out, ts[1:2]...)
		out = append(out, ts[1:]...)
	}
	p.IntTimesteps, p.ratio = out, T/n
	p.reset()
	return nil
}

func (p *PNDM) reset() {
	nn.Free(p.ets...)
	nn.Free(p.curSample)
	p.ets, p.curSample, p.next = nil, nil, 0
}

// Timesteps implements Scheduler.
func (p *PNDM) Timesteps() []float32 { return intsToF32(p.IntTimesteps) }

// InitNoiseSigma implements Scheduler (1).
func (p *PNDM) InitNoiseSigma() float32 { return 1 }

// ScaleModelInput implements Scheduler (identity).
func (p *PNDM) ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor { return retain(x) }

// NeedsNoise implements Scheduler (never).
func (p *PNDM) NeedsNoise(k int) bool { return false }

// Step implements Scheduler.
func (p *PNDM) Step(be nn.Backend, m *nn.Tensor, k int, x, _ *nn.Tensor) (*nn.Tensor, error) {
	if err := checkStep("pndm", len(p.IntTimesteps), k, m, x); err != nil {
		return nil, err
	}
	if k == 0 {
		p.reset()
	}
	if k != p.next {
		return nil, fmt.Errorf("pndm: step %d after step %d: a multistep solver needs every step in order", k, p.next-1)
	}
	t := p.IntTimesteps[k]
	prevT := t - p.ratio
	sample := x
	var eps []term
	if k != 1 {
		if len(p.ets) == 4 {
			nn.Free(p.ets[0])
			p.ets = p.ets[1:]
		}
		p.ets = append(p.ets, retain(m))
	} else {
		prevT, t = t, t+p.ratio
	}
	e := p.ets
	switch n := len(e); {
	case n == 1 && k == 0:
		p.curSample = retain(x)
		eps = []term{{1, m}}
	case n == 1 && k == 1:
		eps = []term{{0.5, m}, {0.5, e[0]}}
		sample = p.curSample
	case n == 2:
		eps = []term{{1.5, e[1]}, {-0.5, e[0]}}
	case n == 3:
		eps = []term{{23.0 / 12, e[2]}, {-16.0 / 12, e[1]}, {5.0 / 12, e[0]}}
	default:
		eps = []term{{55.0 / 24, e[3]}, {-59.0 / 24, e[2]}, {37.0 / 24, e[1]}, {-9.0 / 24, e[0]}}
	}
	at := float64(p.AlphasCumprod[t])
	ap := float64(p.final)
	if prevT >= 0 {
		ap = float64(p.AlphasCumprod[prevT])
	}
	bt, bp := 1-at, 1-ap
	sc := math.Sqrt(ap / at)
	den := at*math.Sqrt(bp) + math.Sqrt(at*bt*ap)
	ce := -(ap - at) / den
	terms := []term{{sc, sample}}
	if p.Config.PredictionType == "v_prediction" {
		// ε′ = √ᾱ_t·v′ + √(1−ᾱ_t)·x (applied to the combined output).
		terms[0].c += ce * math.Sqrt(bt)
		ce *= math.Sqrt(at)
	}
	for _, tm := range eps {
		terms = append(terms, term{ce * tm.c, tm.t})
	}
	out := lin(be, terms...)
	if k == 1 {
		nn.Free(p.curSample)
		p.curSample = nil
	}
	p.next = k + 1
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

package samplers

import (
	"fmt"
	"math"

	"retrace/nn"
)

// DPMSolver is the multistep DPM-Solver++ of Lu et al., "DPM-Solver++: Fast
// Solver for Guided Sampling of Diffusion Probabilistic Models" (2022),
// with diffusers' DPMSolverMultistepScheduler semantics for solver_order 1
// or 2 (2M), algorithm_type dpmsolver++ (data prediction) or dpmsolver
// (noise prediction, Lu et al. 2022a), solver_type midpoint or heun.
// With α_t = 1/√(σ²+1), σ_t = σ·α_t and λ = log(α_t/σ_t), h = λ_t − λ_s:
//
//	first order  (eq. 5):  x_t = (σ_t/σ_s)·x − α_t·(e^{−h} − 1)·x̂₀_s
//	second order (Alg. 2): D = x̂₀_s0 + (1/(2r))·(x̂₀_s0 − x̂₀_s1), r = h_{s0}/h
//
// Steps must be taken in order; the previous data prediction is kept.
type DPMSolver struct {
	Config        SchedulerConfig
	AlphasCumprod []float32
	IntTimesteps  []int
	Sigmas        []float32 // one per timestep plus the final σ
	trainSig      []float32
	lambdas       []float64 // λ_t = log √ᾱ − log √(1−ᾱ), float32 like torch
	prev          *nn.Tensor
	lowerOrder    int
	next          int
}

// NewDPMSolver builds the solver from a scheduler config.
func NewDPMSolver(cfg SchedulerConfig) (*DPMSolver, error) {
	cfg.ClassName = "DPMSolverMultistepScheduler"
	cfg.Defaults()
	if err := checkCommon("dpmsolver", cfg); err != nil {
		return nil, err
	}
	switch {
	case cfg.AlgorithmType != "dpmsolver++" && cfg.AlgorithmType != "dpmsolver":
		return nil, fmt.Errorf("dpmsolver: algorithm_type %q is not supported (dpmsolver++, dpmsolver)", cfg.AlgorithmType)
	case cfg.SolverOrder != 1 && cfg.SolverOrder != 2:
		return nil, fmt.Errorf("dpmsolver: solver_order %d is not supported (1, 2)", cfg.SolverOrder)
	case cfg.SolverType != "midpoint" && cfg.SolverType != "heun":
		return nil, fmt.Errorf("dpmsolver: solver_type %q is not supported (midpoint, heun)", cfg.SolverType)
	case cfg.UseKarrasSigmas || cfg.UseLuLambdas:
		return nil, fmt.Errorf("dpmsolver: use_karras_sigmas / use_lu_lambdas are not supported")
	case cfg.FinalSigmasType != "zero" && cfg.FinalSigmasType != "sigma_min":
		return nil, fmt.Errorf("dpmsolver: final_sigmas_type %q is not supported (zero, sigma_min)", cfg.FinalSigmasType)
	case cfg.AlgorithmType == "dpmsolver" && cfg.FinalSigmasType == "zero":
		return nil, fmt.Errorf("dpmsolver: final_sigmas_type zero needs algorithm_type dpmsolver++")
	case cfg.VarianceType != nil && (*cfg.VarianceType == "learned" || *cfg.VarianceType == "learned_range"):
		return nil, fmt.Errorf("dpmsolver: variance_type %q is not supported", *cfg.VarianceType)
	}
	if _, _, err := predictX0Eps(cfg.PredictionType, 0.5); err != nil {
		return nil, fmt.Errorf("dpmsolver: %w", err)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, err
	}
	if cfg.RescaleBetasZeroSNR {
		ac[len(ac)-1] = 1.0 / (1 << 24)
	}
	d := &DPMSolver{Config: cfg, AlphasCumprod: ac, trainSig: trainSigmas(ac)}
	for _, a := range ac {
		al := float32(math.Sqrt(float64(a)))
		sg := float32(math.Sqrt(float64(1 - a)))
		d.lambdas = append(d.lambdas, float64(float32(math.Log(float64(al)))-float32(math.Log(float64(sg)))))
	}
	return d, nil
}

// SetTimesteps implements Scheduler. Timesteps below the one where λ drops
// under lambda_min_clipped are not used (diffusers' clipped_idx).
func (d *DPMSolver) SetTimesteps(n int) error {
	c := d.Config
	T := c.NumTrainTimesteps
	if err := checkSteps("dpmsolver", n, T); err != nil {
		return err
	}
	// searchsorted(flip(λ), lambda_min_clipped): count of λ below it.
	clipped := 0
	for _, l := range d.lambdas {
		if l < *c.LambdaMinClipped {
			clipped++
		}
	}
	last := T - clipped
	var ts []int
	switch c.TimestepSpacing {
	case "linspace":
		v := numpyLinspace(0, float64(last-1), n+1)
		for i := n; i >= 1; i-- {
			ts = append(ts, int(math.RoundToEven(v[i])))
		}
	case "leading":
		r := last / (n + 1)
		for i := n; i >= 1; i-- {
			ts = append(ts, i*r+c.StepsOffset)
		}
	case "trailing":
		for _, v := range numpyArangeDown(float64(last), float64(T)/float64(n)) {
			ts = append(ts, int(math.RoundToEven(v))-1)
		}
	default:
		return fmt.Errorf("dpmsolver: timestep_spacing %q is not supported (linspace, leading, trailing)", c.TimestepSpacing)
	}
	sig := make([]float32, 0, len(ts)+1)
	for _, t := range ts {
		if t < 0 || t >= T {
			return fmt.Errorf("dpmsolver: timestep %d (steps_offset %d) outside [0, %d)", t, c.StepsOffset, T)
		}
		sig = append(sig, float32(interpSigma(float64(t), d.trainSig)))
	}
	lastSig := float32(0)
	if c.FinalSigmasType == "sigma_min" {
		a := d.AlphasCumprod[0]
		lastSig = float32(math.Sqrt(float64((1 - a) / a)))
	}
	d.IntTimesteps, d.Sigmas = ts, append(sig, lastSig)
	d.reset()
	return nil
}

func (d *DPMSolver) reset() {
	nn.Free(d.prev)
	d.prev, d.lowerOrder, d.next = nil, 0, 0
}

// Timesteps implements Scheduler.
func (d *DPMSolver) Timesteps() []float32 { return intsToF32(d.IntTimesteps) }

// InitNoiseSigma implements Scheduler (1).
func (d *DPMSolver) InitNoiseSigma() float32 { return 1 }

// ScaleModelInput implements Scheduler (identity).
func (d *DPMSolver) ScaleModelInput(be nn.Backend, x *nn.Tensor, k int) *nn.Tensor {
	return retain(x)
}

// NeedsNoise implements Scheduler (never: the SDE variants are not here).
func (d *DPMSolver) NeedsNoise(k int) bool { return false }

// alphaSigma returns α_t = 1/√(σ²+1), σ_t = σ·α_t and λ = log α_t − log σ_t.
func alphaSigma(sg float64) (a, s, l float64) {
	a = 1 / math.Sqrt(sg*sg+1)
	s = sg * a
	return a, s, math.Log(a) - math.Log(s)
}

// Step implements Scheduler.
func (d *DPMSolver) Step(be nn.Backend, m *nn.Tensor, k int, x, _ *nn.Tensor) (*nn.Tensor, error) {
	n := len(d.IntTimesteps)
	if err := checkStep("dpmsolver", n, k, m, x); err != nil {
		return nil, err
	}
	if k == 0 {
		d.reset()
	}
	if k != d.next {
		return nil, fmt.Errorf("dpmsolver: step %d after step %d: a multistep solver needs every step in order", k, d.next-1)
	}
	c := d.Config
	lowerFinal := k == n-1 && (c.EulerAtFinal || (*c.LowerOrderFinal && n < 15) || c.FinalSigmasType == "zero")
	lowerSecond := k == n-2 && *c.LowerOrderFinal && n < 15
	_ = lowerSecond // only matters for third order

	// Model output → the solver's quantity (x̂₀ for ++, ε̂ otherwise).
	a0, s0, l0 := alphaSigma(float64(d.Sigmas[k]))
	var cm [2]float64 // coefficients of (x, m)
	switch {
	case c.AlgorithmType == "dpmsolver++" && c.PredictionType == "epsilon":
		cm = [2]float64{1 / a0, -s0 / a0}
	case c.AlgorithmType == "dpmsolver++" && c.PredictionType == "sample":
		cm = [2]float64{0, 1}
	case c.AlgorithmType == "dpmsolver++": // v_prediction
		cm = [2]float64{a0, -s0}
	case c.PredictionType == "epsilon":
		cm = [2]float64{0, 1}
	case c.PredictionType == "sample":
		cm = [2]float64{1 / s0, -a0 / s0}
	default: // dpmsolver, v_prediction
		cm = [2]float64{s0, a0}
	}
	cur := lin(be, term{cm[0], x}, term{cm[1], m})

	at, st, lt := alphaSigma(float64(d.Sigmas[k+1]))
	h := lt - l0
	var out *nn.Tensor
	pp := c.AlgorithmType == "dpmsolver++"
	// Coefficients of x and D0 (first order, eq. 5 of each paper).
	var cx, cd float64
	if pp {
		cx, cd = st/s0, -at*(math.Exp(-h)-1)
	} else {
		cx, cd = at/a0, -st*(math.Exp(h)-1)
	}
	if c.SolverOrder == 1 || d.lowerOrder < 1 || lowerFinal {
		out = lin(be, term{cx, x}, term{cd, cur})
	} else {
		_, _, l1 := alphaSigma(float64(d.Sigmas[k-1]))
		r0 := (l0 - l1) / h
		// D1 = (m0 − m1)/r0; midpoint: ½·cd·D1; heun: see diffusers.
		var c1 float64
		switch {
		case pp && c.SolverType == "midpoint":
			c1 = 0.5 * cd
		case pp:
			c1 = at * ((math.Exp(-h)-1)/h + 1)
		case c.SolverType == "midpoint":
			c1 = 0.5 * cd
		default:
			c1 = -st * ((math.Exp(h)-1)/h - 1)
		}
		out = lin(be, term{cx, x}, term{cd + c1/r0, cur}, term{-c1 / r0, d.prev})
	}
	nn.Free(d.prev)
	d.prev = cur
	if d.lowerOrder < c.SolverOrder {
		d.lowerOrder++
	}
	d.next = k + 1
	if err := be.Err(); err != nil {
		nn.Free(out)
		return nil, err
	}
	return out, nil
}

package samplers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

// TestSchedulerPredictionTypes: a sample- or v-prediction model output that
// encodes the same (x̂₀, ε̂) as an epsilon output gives the same trajectory.
func TestSchedulerPredictionTypes(t *testing.T) {
	be := nn.NewCPU()
	f := false
	for _, class := range []string{"DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler",
		"EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler"} {
		var ref []float32
		for _, pred := range []string{"epsilon", "sample", "v_prediction"} {
			if pred == "sample" && class == "EulerAncestralDiscreteScheduler" {
				continue // diffusers: not implemented
			}
			cfg := SchedulerConfig{ClassName: class, PredictionType: pred, ClipSample: &f}
			s, err := NewScheduler(cfg)
			require.NoError(t, err, class)
			require.NoError(t, s.SetTimesteps(6))
			epsGen, noise := NewNoise(1), NewNoise(2)
			xv := NewNoise(3).Float32s(48)
			for i := range xv {
				xv[i] *= s.InitNoiseSigma()
			}
			for k := range s.Timesteps() {
				eps := epsGen.Float32s(len(xv))
				// ᾱ and the sample's parameterisation at step k.
				var abar float64
				sigmaSpace := false
				switch s := s.(type) {
				case *DDIM:
					abar = float64(s.AlphasCumprod[s.IntTimesteps[k]])
				case *DDPM:
					abar = float64(s.AlphasCumprod[s.IntTimesteps[k]])
				case *Euler:
					sg := float64(s.Sigmas[k])
					abar, sigmaSpace = 1/(sg*sg+1), true
				case *EulerAncestral:
					sg := float64(s.Sigmas[k])
					abar, sigmaSpace = 1/(sg*sg+1), true
				case *DPMSolver:
					sg := float64(s.Sigmas[k])
					abar = 1 / (sg*sg + 1)
				}
				m := make([]float32, len(xv))
				for i := range xv {
					x, e := float64(xv[i]), float64(eps[i])
					var x0 float64
					if sigmaSpace {
						x0 = x - math.Sqrt((1-abar)/abar)*e
					} else {
						x0 = (x - math.Sqrt(1-abar)*e) / math.Sqrt(abar)
					}
					switch pred {
					case "epsilon":
						m[i] = float32(e)
					case "sample":
						m[i] = float32(x0)
					default:
						m[i] = float32(math.Sqrt(abar)*e - math.Sqrt(1-abar)*x0)
					}
				}
				shape := []int{1, 3, 4, 4}
				x, mt := be.Upload(shape, xv), be.Upload(shape, m)
				var z *nn.Tensor
				if s.NeedsNoise(k) {
					z = noise.Tensor(be, shape...)
				}
				out, err := s.Step(be, mt, k, x, z)
				require.NoError(t, err, "%s %s step %d", class, pred, k)
				xv = read(t, be, out)
				nn.Free(x, mt, z, out)
			}
			if ref == nil {
				ref = xv
			} else {
				requireClose(t, ref, xv, 1e-4*max(1, maxAbs(ref)), 1e-4, class+" "+pred)
			}
		}
	}
}

// TestDDIMEtaOneIsDDPM: DDIM with η = 1 is DDPM's ancestral step with the
// fixed_small variance (Song et al. 2021, eq. 16) for the same timesteps
// and noise.
func TestDDIMEtaOneIsDDPM(t *testing.T) {
	be := nn.NewCPU()
	f := false
	cfg := SchedulerConfig{BetaSchedule: "scaled_linear", BetaStart: 0.00085, BetaEnd: 0.012, ClipSample: &f, SetAlphaToOne: new(bool), StepsOffset: 1}
	d, err := NewDDIM(cfg)
	require.NoError(t, err)
	d.Eta = 1
	cfg.ClassName = "DDPMScheduler"
	p, err := NewDDPM(cfg)
	require.NoError(t, err)
	require.NoError(t, d.SetTimesteps(10))
	require.NoError(t, p.SetTimesteps(10))
	x := NewNoise(4).Tensor(be, 1, 3, 4, 4)
	m := NewNoise(5).Tensor(be, 1, 3, 4, 4)
	z := NewNoise(6).Tensor(be, 1, 3, 4, 4)
	defer nn.Free(x, m, z)
	for k := 0; k < 9; k++ { // the last step differs: DDPM's ᾱ_prev is 1 there
		require.True(t, d.NeedsNoise(k) && p.NeedsNoise(k))
		a, err := d.Step(be, m, k, x, z)
		require.NoError(t, err)
		b, err := p.Step(be, m, k, x, z)
		require.NoError(t, err)
		av := read(t, be, a)
		requireClose(t, av, read(t, be, b), 1e-5*max(1, maxAbs(av)), 1e-5, "step")
		nn.Free(a, b)
	}
}

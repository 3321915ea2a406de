package samplers

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/safetensors"
)

// schedRun is one entry of schedulers/config.json → runs.
type schedRun struct {
	Name           string
	Class          string          `json:"class"`
	Config         json.RawMessage `json:"config"`
	InitNoiseSigma float64         `json:"init_noise_sigma"`
	NoiseDrawsUsed int             `json:"noise_draws_used"`
	Steps          int             `json:"num_inference_steps"`
}

// schedulerRuns reads the fixture's runs that name a scheduler class
// (sorted by name); others (e.g. edict, a pipeline) are left to their
// own tests.
func schedulerRuns(t *testing.T) (string, *safetensors.File, []schedRun) {
	dir, io := golden.Open(t, "schedulers")
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var cfg struct {
		Runs map[string]json.RawMessage `json:"runs"`
	}
	require.NoError(t, json.Unmarshal(pythonJSON(b), &cfg))
	var runs []schedRun
	for name, raw := range cfg.Runs {
		var r schedRun
		require.NoError(t, json.Unmarshal(pythonJSON(raw), &r), name)
		if r.Class == "" {
			continue
		}
		r.Name = name
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].Name < runs[j].Name })
	require.NotEmpty(t, runs)
	return dir, io, runs
}

func (r schedRun) scheduler(t *testing.T) Scheduler {
	c, err := ParseSchedulerConfig(r.Config)
	require.NoError(t, err, r.Name)
	c.ClassName = r.Class
	s, err := NewScheduler(c)
	require.NoError(t, err, r.Name)
	require.NoError(t, s.SetTimesteps(r.Steps), r.Name)
	return s
}

func hasKey(io *safetensors.File, name string) bool { _, ok := io.Info(name); return ok }

// slab returns row k of a [N, ...] tensor read with golden.F32.
func slab(shape []int, v []float32, k int) ([]int, []float32) {
	n := len(v) / shape[0]
	return shape[1:], v[k*n : (k+1)*n]
}

func maxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, math.Abs(float64(x)))
	}
	return m
}

// checkSchedule compares timesteps, sigmas and init_noise_sigma.
func checkSchedule(t *testing.T, io *safetensors.File, r schedRun, s Scheduler) {
	_, ts := golden.F32(t, io, r.Name+".timesteps")
	require.Equal(t, ts, s.Timesteps(), "%s timesteps", r.Name)
	requireClose(t, []float32{float32(r.InitNoiseSigma)}, []float32{s.InitNoiseSigma()}, 0, 1e-6, r.Name+" init_noise_sigma")
	if hasKey(io, r.Name+".sigmas") {
		_, want := golden.F32(t, io, r.Name+".sigmas")
		var got []float32
		switch s := s.(type) {
		case *Euler:
			got = s.Sigmas
		case *EulerAncestral:
			got = s.Sigmas
		case *DPMSolver:
			got = s.Sigmas
		default:
			t.Fatalf("%s: sigmas stored for %T", r.Name, s)
		}
		requireClose(t, want, got, 0, 1e-6, r.Name+" sigmas")
	}
}

// TestGoldenSchedulersPerStep feeds every step the reference latents,
// model outputs and noise of each run and compares the next latents
// (README: rtol 1e-5, atol 1e-5·max(1, max|x|)). Multistep solvers see the
// whole sequence in order.
func TestGoldenSchedulersPerStep(t *testing.T) {
	_, io, runs := schedulerRuns(t)
	_, noise := golden.F32(t, io, "in.noise")
	nshape, _ := golden.F32(t, io, "in.noise")
	for _, r := range runs {
		t.Run(r.Name, func(t *testing.T) {
			bothBackends(t, func(t *testing.T, be nn.Backend) {
				s := r.scheduler(t)
				checkSchedule(t, io, r, s)
				lshape, lat := golden.F32(t, io, r.Name+".latents")
				mshape, mo := golden.F32(t, io, r.Name+".model_outputs")
				var mi []float32
				if hasKey(io, r.Name+".model_inputs") {
					_, mi = golden.F32(t, io, r.Name+".model_inputs")
				}
				require.Equal(t, len(s.Timesteps()), mshape[0])
				draws := 0
				for k := range s.Timesteps() {
					sh, xv := slab(lshape, lat, k)
					_, mv := slab(mshape, mo, k)
					_, want := slab(lshape, lat, k+1)
					x, m := be.Upload(sh, xv), be.Upload(sh, mv)
					in := s.ScaleModelInput(be, x, k)
					if mi != nil {
						_, wi := slab(mshape, mi, k)
						requireClose(t, wi, read(t, be, in), 1e-5*max(1, maxAbs(wi)), 1e-5, fmt.Sprintf("model_inputs[%d]", k))
					}
					var z *nn.Tensor
					if s.NeedsNoise(k) {
						_, zv := slab(nshape, noise, draws)
						z = be.Upload(sh, zv)
						draws++
					}
					out, err := s.Step(be, m, k, x, z)
					require.NoError(t, err)
					requireClose(t, want, read(t, be, out), 1e-5*max(1, maxAbs(want)), 1e-5, fmt.Sprintf("latents[%d]", k+1))
					nn.Free(x, m, in, z, out)
				}
				require.Equal(t, r.NoiseDrawsUsed, draws, "noise draws")
			})
		})
	}
}

// TestGoldenSchedulersTrajectory runs each scheduler with the real
// eps-model (../unet2d_tiny) from the reference start latent and compares
// every step loosely (rtol 1e-3, atol 1e-3·max(1, max|x|)): float32 error
// compounds along the trajectory and the GPU sums in another order.
func TestGoldenSchedulersTrajectory(t *testing.T) {
	dir, io, runs := schedulerRuns(t)
	_, noise := golden.F32(t, io, "in.noise")
	nshape, _ := golden.F32(t, io, "in.noise")
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		unet, err := nn.LoadUNet2DModelDir(be, filepath.Join(dir, "../unet2d_tiny"), nn.F32)
		require.NoError(t, err)
		defer unet.Free()
		for i, r := range runs {
			if testing.Short() && i > 0 {
				break // -short: one run per backend
			}
			t.Run(r.Name, func(t *testing.T) {
				s := r.scheduler(t)
				lshape, lat := golden.F32(t, io, r.Name+".latents")
				sh, x0 := slab(lshape, lat, 0)
				x := be.Upload(sh, x0)
				draws, worst := 0, 0.0
				for k, ts := range s.Timesteps() {
					in := s.ScaleModelInput(be, x, k)
					m, err := unet.Forward(be, in, []float32{ts})
					require.NoError(t, err)
					var z *nn.Tensor
					if s.NeedsNoise(k) {
						_, zv := slab(nshape, noise, draws)
						z = be.Upload(sh, zv)
						draws++
					}
					nx, err := s.Step(be, m, k, x, z)
					require.NoError(t, err)
					nn.Free(in, m, z, x)
					x = nx
					_, want := slab(lshape, lat, k+1)
					got := read(t, be, x)
					atol := 1e-3 * max(1, maxAbs(want))
					requireClose(t, want, got, atol, 1e-3, fmt.Sprintf("%s latents[%d]", r.Name, k+1))
					for i := range want {
						d := math.Abs(float64(want[i]) - float64(got[i]))
						worst = max(worst, d/(atol+1e-3*math.Abs(float64(want[i]))))
					}
				}
				t.Logf("%s: worst |Δ|/(atol+rtol·|x|) = %.3f", r.Name, worst)
				nn.Free(x)
			})
		}
	})
}

// TestGoldenSchedulersSchedule checks betas and ᾱ bit for bit against
// schedule.sd.* (scaled_linear runs) and schedule.linear.* (linear runs).
func TestGoldenSchedulersSchedule(t *testing.T) {
	_, io, runs := schedulerRuns(t)
	for _, r := range runs {
		c, err := ParseSchedulerConfig(r.Config)
		require.NoError(t, err)
		c.ClassName = r.Class
		c.Defaults()
		key := map[string]string{"scaled_linear": "schedule.sd", "linear": "schedule.linear"}[c.BetaSchedule]
		if key == "" || !hasKey(io, key+".betas") {
			continue
		}
		b, err := c.Betas()
		require.NoError(t, err)
		ac, err := c.AlphasCumprod()
		require.NoError(t, err)
		_, wb := golden.F32(t, io, key+".betas")
		_, wa := golden.F32(t, io, key+".alphas_cumprod")
		require.Equal(t, wb, b, "%s betas", r.Name)
		require.Equal(t, wa, ac, "%s alphas_cumprod", r.Name)
	}
}

package samplers

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/safetensors"
)

// Tests of the exact inversion methods against the golden fixtures. Every
// trajectory runs twice: "formulas" feeds the reference model outputs back
// instead of calling the UNet (only the update formulas are tested, tight
// tolerance), "model" calls the Go UNet (whole trajectories, rtol 1e-3 as
// the fixture README recommends). Tolerances are relative to the largest
// value of the compared tensor (max(1, max|want|)), which is how the README
// asks γ < 1 BDIA runs to be compared.

// exactModes are the two ways a golden trajectory is run.
var exactModes = []struct {
	name    string
	teacher bool
	tol     float64
}{
	{"formulas", true, 2e-5},
	{"model", false, 1e-3},
}

// requireExactRel checks max|want−got| ≤ tol·scale with scale = max(1,
// max|want|, minScale) and returns the relative error max|want−got|/scale.
// minScale is the magnitude of the trajectory the tensor belongs to: where
// a step cancels large terms (BDIA reconstruction with γ < 1 starts from
// latents ~5e4 and ends near 1), float32 rounding is relative to them.
func requireExactRel(t testing.TB, want, got []float32, tol, minScale float64, msg string) float64 {
	t.Helper()
	require.Equal(t, len(want), len(got), msg)
	scale := math.Max(1, exactMaxAbs(want))
	scale = math.Max(scale, minScale)
	d := exactMaxDiff(want, got)
	if !(d <= tol*scale) {
		t.Fatalf("%s: max abs diff %.3g > %.3g·%.3g", msg, d, tol, scale)
	}
	return d / scale
}

func exactMaxAbs(v []float32) float64 {
	m := 0.0
	for _, x := range v {
		m = math.Max(m, math.Abs(float64(x)))
	}
	return m
}

// exactMaxDiff returns max|a−b|.
func exactMaxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		v := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(v) {
			return math.Inf(1)
		}
		d = math.Max(d, v)
	}
	return d
}

// exactRows reads an io tensor [N, ...] as N rows and the row shape.
type exactRows struct {
	shape []int
	v     []float32
	n     int
}

func readExactRows(t testing.TB, io *safetensors.File, key string) exactRows {
	t.Helper()
	s, v := golden.F32(t, io, key)
	return exactRows{shape: s[1:], v: v, n: s[0]}
}

func (r exactRows) row(i int) []float32 {
	per := len(r.v) / r.n
	return r.v[i*per : (i+1)*per]
}

// latentShape is the row shape as a 4-D latent shape (a batch of 1 added
// where the fixture stores none).
func (r exactRows) latentShape() []int {
	if len(r.shape) == 3 {
		return append([]int{1}, r.shape...)
	}
	return r.shape
}

func (r exactRows) upload(be nn.Backend, i int) *nn.Tensor {
	return be.Upload(r.latentShape(), r.row(i))
}

// exactTimes reads an io tensor of timesteps (I64 or F32) as float32.
func exactTimes(t testing.TB, io *safetensors.File, key string) []float32 {
	t.Helper()
	ti, ok := io.Info(key)
	require.True(t, ok, key)
	if ti.DType == "I64" {
		_, v := golden.Ints(t, io, key)
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	}
	_, v := golden.F32(t, io, key)
	return v
}

// exactCalls checks every eps call of a method against a reference trace
// (timestep and model input), and in teacher mode answers with the
// reference model output instead of calling the model.
type exactCalls struct {
	name     string
	ts       []float32
	inputs   exactRows // model inputs (n may exceed len(ts): latents)
	outputs  exactRows
	first    int // row of inputs for the first call (outputs: outFirst)
	outFirst int
	scale    float64
	i        int
	maxInErr float64
}

func (r *exactCalls) eps(t *testing.T, model EpsFunc, teacher bool, tol float64) EpsFunc {
	return func(be nn.Backend, x *nn.Tensor, tt float32) (*nn.Tensor, error) {
		t.Helper()
		k := r.first + r.i
		require.Less(t, r.i, len(r.ts), "%s: more eps calls than the reference made", r.name)
		require.Equal(t, r.ts[r.i], tt, "%s: timestep of call %d", r.name, r.i)
		e := requireExactRel(t, r.inputs.row(k), read(t, be, x), tol, r.scale, fmt.Sprintf("%s: model input of call %d (t=%v)", r.name, r.i, tt))
		r.maxInErr = math.Max(r.maxInErr, e)
		r.i++
		if teacher {
			return be.Upload(x.Shape(), r.outputs.row(r.outFirst+r.i-1)), nil
		}
		return model(be, x, tt)
	}
}

func (r *exactCalls) done(t *testing.T) {
	t.Helper()
	require.Equal(t, len(r.ts), r.i, "%s: number of eps calls", r.name)
}

// pyNonFinite matches the bare Infinity / NaN that Python's json writes.
var pyNonFinite = regexp.MustCompile(`([:\[,]\s*)-?(Infinity|NaN)\b`)

func readExactConfig(t testing.TB, dir string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(pyNonFinite.ReplaceAll(b, []byte("${1}null")), v))
}

func loadExactUNet2D(t *testing.T, be nn.Backend) *nn.UNet2DModel {
	t.Helper()
	m, err := nn.LoadUNet2DModelDir(be, filepath.Join(golden.Dir(t), "unet2d_tiny"), nn.F32)
	require.NoError(t, err)
	t.Cleanup(m.Free)
	return m
}

func requireExactTimesteps(t *testing.T, want []float32, got []int) {
	t.Helper()
	require.Equal(t, len(want), len(got), "timesteps")
	for i := range want {
		require.EqualValues(t, want[i], got[i], "timestep %d", i)
	}
}

// TestGoldenBDIA reproduces BDIA-DDIM sampling, inversion and
// reconstruction of the bdia fixture for every run its config lists.
func TestGoldenBDIA(t *testing.T) {
	dir, io := golden.Open(t, "bdia")
	var cfg struct {
		Scheduler struct {
			Config SchedulerConfig `json:"config"`
			Steps  int             `json:"num_inference_steps"`
		} `json:"scheduler"`
		Runs map[string]struct {
			Gamma    float64  `json:"gamma"`
			Strength *float64 `json:"init_image_strength"`
		} `json:"runs"`
	}
	readExactConfig(t, dir, &cfg)
	var names []string
	for k := range cfg.Runs {
		names = append(names, k)
	}
	sort.Strings(names)
	require.NotEmpty(t, names)
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		model := UNetEps(loadExactUNet2D(t, be))
		x0s, x0 := golden.F32(t, io, "in.x0")
		xTs, xT := golden.F32(t, io, "in.x_T")
		for _, mode := range exactModes {
			t.Run(mode.name, func(t *testing.T) {
				for _, name := range names {
					run := cfg.Runs[name]
					strength := 1.0
					if run.Strength != nil {
						strength = *run.Strength
					}
					// The UNet runs are slow on CPU adapters: with the model,
					// check the γ = 1 runs and the partial-strength run; the
					// formulas of every run are checked with the reference
					// outputs.
					if !mode.teacher && run.Gamma != 1 && strength == 1 {
						continue
					}
					b, err := NewBDIA(cfg.Scheduler.Config, cfg.Scheduler.Steps, run.Gamma)
					require.NoError(t, err)
					requireExactTimesteps(t, exactTimes(t, io, "timesteps"), b.Timesteps())
					if strings.HasPrefix(name, "sample_") {
						lat := readExactRows(t, io, name+".latents")
						rc := &exactCalls{name: name, ts: exactTimes(t, io, name+".timesteps"), inputs: lat, outputs: readExactRows(t, io, name+".model_outputs"), scale: exactMaxAbs(lat.v)}
						in := be.Upload(xTs, xT)
						out, err := b.Sample(be, rc.eps(t, model, mode.teacher, mode.tol), in)
						require.NoError(t, err, name)
						rc.done(t)
						e := requireExactRel(t, lat.row(lat.n-1), read(t, be, out), mode.tol, rc.scale, name+": final latent")
						t.Logf("%s: max rel err inputs %.2g, final %.2g", name, rc.maxInErr, e)
						nn.Free(in, out)
						continue
					}
					// Inversion of in.x0: the model inputs are latents[0…m−1],
					// the result is the pair (latents[m], latents[m−1]).
					inv := readExactRows(t, io, "invert_"+name+".latents")
					rc := &exactCalls{name: "invert_" + name, ts: exactTimes(t, io, "invert_"+name+".unet_t"), inputs: inv, outputs: readExactRows(t, io, "invert_"+name+".model_outputs"), scale: exactMaxAbs(inv.v)}
					in := be.Upload(x0s, x0)
					top, below, err := b.Invert(be, rc.eps(t, model, mode.teacher, mode.tol), in, strength)
					require.NoError(t, err, name)
					rc.done(t)
					m := inv.n - 1
					et := requireExactRel(t, inv.row(m), read(t, be, top), mode.tol, rc.scale, name+": inverted top latent")
					eb := requireExactRel(t, inv.row(m-1), read(t, be, below), mode.tol, rc.scale, name+": inverted lower latent")
					// Reconstruction from the fixture's pair: model inputs are
					// latents[1…m−1], the result latents[m].
					rec := readExactRows(t, io, "recon_"+name+".latents")
					rr := &exactCalls{name: "recon_" + name, ts: exactTimes(t, io, "recon_"+name+".unet_t"), inputs: rec, outputs: readExactRows(t, io, "recon_"+name+".model_outputs"), first: 1, scale: exactMaxAbs(rec.v)}
					pt, pb := rec.upload(be, 0), rec.upload(be, 1)
					out, err := b.Reconstruct(be, rr.eps(t, model, mode.teacher, mode.tol), pt, pb, strength)
					require.NoError(t, err, name)
					rr.done(t)
					_, want := golden.F32(t, io, "recon_"+name+".reconstruction")
					er := requireExactRel(t, want, read(t, be, out), mode.tol, rr.scale, name+": reconstruction")
					t.Logf("γ=%v strength %v: inversion rel err inputs %.2g top %.2g below %.2g; reconstruction inputs %.2g final %.2g",
						run.Gamma, strength, rc.maxInErr, et, eb, rr.maxInErr, er)
					nn.Free(in, top, below, pt, pb, out)
				}
			})
		}
	})
}

// TestGoldenEFDDPM reproduces the edit-friendly DDPM inversion of the
// ef_ddpm fixture: the independent x_t draws, the forward process (x_t,
// noise maps, zeroed z_0), and the reverse runs rev, rev_exact, rev_skip.
func TestGoldenEFDDPM(t *testing.T) {
	dir, io := golden.Open(t, "ef_ddpm")
	var cfg struct {
		Scheduler struct {
			Config SchedulerConfig `json:"config"`
			Steps  int             `json:"num_inference_steps"`
		} `json:"scheduler"`
		Eta  float64 `json:"eta"`
		Skip int     `json:"skip"`
	}
	readExactConfig(t, dir, &cfg)
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		model := UNetEps(loadExactUNet2D(t, be))
		f, err := NewEFDDPM(cfg.Scheduler.Config, cfg.Scheduler.Steps)
		require.NoError(t, err)
		f.Eta = cfg.Eta
		requireExactTimesteps(t, exactTimes(t, io, "timesteps"), f.Timesteps())
		n := len(f.Timesteps())
		x0s, x0 := golden.F32(t, io, "in.x0")
		noiseRows := readExactRows(t, io, "in.xts_noise")
		require.Equal(t, n, noiseRows.n)
		upload := func(r exactRows, k int) []*nn.Tensor {
			out := make([]*nn.Tensor, k)
			for i := range out {
				out[i] = r.upload(be, i)
			}
			return out
		}
		in := be.Upload(x0s, x0)
		noise := upload(noiseRows, n)
		defer func() { nn.Free(in); nn.Free(noise...) }()

		// fwd.xts_sampled: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·noise, independent draws.
		xts, err := f.SampleXts(be, in, noise)
		require.NoError(t, err)
		sampled := readExactRows(t, io, "fwd.xts_sampled")
		require.Equal(t, n+1, sampled.n)
		for i, x := range xts {
			requireExactRel(t, sampled.row(i), read(t, be, x), 1e-6, 0, fmt.Sprintf("xts_sampled[%d]", i))
		}
		nn.Free(xts...)

		fxts, fzs := readExactRows(t, io, "fwd.xts"), readExactRows(t, io, "fwd.zs")
		for _, mode := range exactModes {
			t.Run(mode.name, func(t *testing.T) {
				rc := &exactCalls{name: "fwd", ts: exactTimes(t, io, "fwd.unet_t"), inputs: readExactRows(t, io, "fwd.model_inputs"), outputs: readExactRows(t, io, "fwd.model_outputs"), scale: exactMaxAbs(fxts.v)}
				inv, err := f.Invert(be, rc.eps(t, model, mode.teacher, mode.tol), in, noise)
				require.NoError(t, err)
				defer inv.Free()
				rc.done(t)
				ex, ez := 0.0, 0.0
				for i, x := range inv.Xts {
					ex = math.Max(ex, requireExactRel(t, fxts.row(i), read(t, be, x), mode.tol, rc.scale, fmt.Sprintf("fwd.xts[%d]", i)))
				}
				for i, z := range inv.Zs {
					ez = math.Max(ez, requireExactRel(t, fzs.row(i), read(t, be, z), mode.tol, 0, fmt.Sprintf("fwd.zs[%d]", i)))
				}
				_, z0 := golden.F32(t, io, "fwd.z0_before_zeroing")
				e0 := requireExactRel(t, z0, read(t, be, inv.Z0), mode.tol, 0, "fwd.z0_before_zeroing")
				t.Logf("forward: rel err model inputs %.2g, xts %.2g, zs %.2g, z0 %.2g", rc.maxInErr, ex, ez, e0)

				// Reverse runs from the fixture's x_T and noise maps.
				zs := upload(fzs, n)
				defer nn.Free(zs...)
				z0t := be.Upload(fzs.latentShape(), z0)
				defer nn.Free(z0t)
				exact := append([]*nn.Tensor{z0t}, zs[1:]...)
				for _, r := range []struct {
					key string
					zs  []*nn.Tensor
				}{{"rev", zs}, {"rev_exact", exact}, {fmt.Sprintf("rev_skip%d", cfg.Skip), zs[:n-cfg.Skip]}} {
					lat := readExactRows(t, io, r.key+".latents")
					rr := &exactCalls{name: r.key, ts: exactTimes(t, io, r.key+".unet_t"), inputs: lat, outputs: readExactRows(t, io, r.key+".model_outputs"), scale: exactMaxAbs(lat.v)}
					xT := fxts.upload(be, len(r.zs))
					out, err := f.Reverse(be, rr.eps(t, model, mode.teacher, mode.tol), xT, r.zs)
					require.NoError(t, err, r.key)
					rr.done(t)
					_, want := golden.F32(t, io, r.key+".x0_rec")
					got := read(t, be, out)
					e := requireExactRel(t, want, got, mode.tol, rr.scale, r.key+".x0_rec")
					t.Logf("%s: rel err inputs %.2g, x0_rec %.2g; max|x0_rec − x0| = %.3g", r.key, rr.maxInErr, e, exactMaxDiff(x0, got))
					nn.Free(xT, out)
				}
			})
		}
	})
}

// TestGoldenEDICT reproduces the EDICT run of the schedulers fixture: all
// 2·2·n model calls (inversion, then reconstruction from the reference's
// inverted pair), the inverted latents and the reconstruction.
func TestGoldenEDICT(t *testing.T) {
	dir, io := golden.Open(t, "schedulers")
	var cfg struct {
		Runs map[string]json.RawMessage `json:"runs"`
	}
	readExactConfig(t, dir, &cfg)
	var ddim struct {
		Config SchedulerConfig `json:"config"`
	}
	require.NoError(t, json.Unmarshal(cfg.Runs["ddim"], &ddim))
	var run struct {
		Guidance float64 `json:"guidance_scale"`
		Leapfrog bool    `json:"leapfrog_steps"`
		P        float64 `json:"mixing_coeff"`
	}
	require.NoError(t, json.Unmarshal(cfg.Runs["edict"], &run))
	require.EqualValues(t, 1, run.Guidance, "the fixture's eps-model is unconditional")
	ts := exactTimes(t, io, "edict.timesteps")
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		model := UNetEps(loadExactUNet2D(t, be))
		d, err := NewEDICT(ddim.Config, len(ts))
		require.NoError(t, err)
		d.P, d.Leapfrog = run.P, run.Leapfrog
		requireExactTimesteps(t, ts, d.Timesteps())
		x0s, x0 := golden.F32(t, io, "in.x0")
		trace := exactTimes(t, io, "edict.trace_t")
		half := len(trace) / 2
		ins, outs := readExactRows(t, io, "edict.trace_model_inputs"), readExactRows(t, io, "edict.trace_model_outputs")
		for _, mode := range exactModes {
			t.Run(mode.name, func(t *testing.T) {
				rc := &exactCalls{name: "edict inversion", ts: trace[:half], inputs: ins, outputs: outs, scale: exactMaxAbs(ins.v)}
				in := be.Upload(x0s, x0)
				x, y, err := d.Invert(be, rc.eps(t, model, mode.teacher, mode.tol), in, 1)
				require.NoError(t, err)
				rc.done(t)
				_, wx := golden.F32(t, io, "edict.inverted_x")
				_, wy := golden.F32(t, io, "edict.inverted_y")
				ex := requireExactRel(t, wx, read(t, be, x), mode.tol, rc.scale, "edict.inverted_x")
				ey := requireExactRel(t, wy, read(t, be, y), mode.tol, rc.scale, "edict.inverted_y")

				rr := &exactCalls{name: "edict reconstruction", ts: trace[half:], inputs: ins, outputs: outs, first: half, outFirst: half, scale: exactMaxAbs(ins.v)}
				px, py := be.Upload(x0s, wx), be.Upload(x0s, wy)
				rx, ry, err := d.Reconstruct(be, rr.eps(t, model, mode.teacher, mode.tol), px, py, 1)
				require.NoError(t, err)
				rr.done(t)
				_, want := golden.F32(t, io, "edict.reconstruction")
				got := read(t, be, rx)
				er := requireExactRel(t, want, got, mode.tol, rr.scale, "edict.reconstruction")
				t.Logf("inversion: rel err inputs %.2g, x %.2g, y %.2g; reconstruction: inputs %.2g, result %.2g; max|rec − x0| = %.3g",
					rc.maxInErr, ex, ey, rr.maxInErr, er, exactMaxDiff(x0, got))
				nn.Free(in, x, y, px, py, rx, ry)
			})
		}
	})
}

package pack

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/safetensors"
)

// fixtureErr runs a tiny fixture from a pack on the Go reference and
// returns the relative L2 error of its output vs the diffusers golden
// output (UNet: out.sample; VAE: out.decoded; CLIP: out.last_hidden_state).
func fixtureErr(t *testing.T, be nn.Backend, fixture string, p *Pack) float64 {
	switch fixture {
	case "unet2dcond_tiny":
		return unetErr(t, be, p)
	case "vae_tiny":
		_, io := golden.Open(t, "vae_tiny")
		vae, err := p.VAE(be)
		require.NoError(t, err)
		defer vae.Free()
		zs, z := golden.F32(t, io, "in.latent")
		dec, err := vae.Decode(be, be.Upload(zs, z))
		require.NoError(t, err)
		_, want := golden.F32(t, io, "out.decoded")
		got, _ := be.Read(dec)
		return relL2(want, got)
	}
	_, io := golden.Open(t, "clip_text_tiny")
	clip, err := p.TextEncoder(be)
	require.NoError(t, err)
	defer clip.Free()
	s, v := golden.Ints(t, io, "in.input_ids")
	ids := make([][]int, s[0])
	for i := range ids {
		for j := 0; j < s[1]; j++ {
			ids[i] = append(ids[i], int(v[i*s[1]+j]))
		}
	}
	out, err := clip.Forward(be, ids, false)
	require.NoError(t, err)
	_, want := golden.F32(t, io, "out.last_hidden_state")
	got, _ := be.Read(out.LastHiddenState)
	return relL2(want, got)
}

// spearman is the rank correlation of a and b.
func spearman(a, b []float64) float64 {
	rank := func(x []float64) []float64 {
		idx := make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(i, j int) bool { return x[idx[i]] < x[idx[j]] })
		r := make([]float64, len(x))
		for k, i := range idx {
			r[i] = float64(k)
		}
		return r
	}
	ra, rb := rank(a), rank(b)
	var d2 float64
	for i := range ra {
		d2 += (ra[i] - rb[i]) * (ra[i] - rb[i])
	}
	n := float64(len(a))
	return 1 - 6*d2/(n*(n*n-1))
}

// TestPackNumbers prints the tables of docs/PACK.md (slow; run with
// RETRACE_PACK_NUMBERS=1): output error and size per storage for the three
// tiny fixtures, q4 with and without the range search, and budget packs
// planned from measured and from proxy sensitivities.
func TestPackNumbers(t *testing.T) {
	if os.Getenv("RETRACE_PACK_NUMBERS") == "" {
		t.Skip("set RETRACE_PACK_NUMBERS=1")
	}
	be := nn.NewCPU()
	fixtures := []string{"unet2dcond_tiny", "vae_tiny", "clip_text_tiny"}
	type row struct {
		label  string
		pol    Policy
		minmax bool
	}
	rows := []row{{"f16", Policy{Mode: "f16"}, false}, {"q8 (per channel)", Policy{Mode: "q8"}, false}}
	for _, g := range []int{32, 64, 128} {
		rows = append(rows, row{fmt.Sprintf("q4 g%d min/max", g), Policy{Mode: "q4", Group: g}, true},
			row{fmt.Sprintf("q4 g%d search", g), Policy{Mode: "q4", Group: g}, false})
	}
	rows = append(rows, row{"mixed g32", Policy{Mode: "mixed", Group: 32}, false}, row{"mixed g64", Policy{Mode: "mixed", Group: 64}, false})
	sizes := map[string]map[string]int64{}
	for _, r := range rows {
		line := "| " + r.label + " |"
		for _, f := range fixtures {
			if r.minmax {
				nn.Q4Search = -1
			}
			p, m := convertFixture(t, f, r.pol, 0)
			nn.Q4Search = 4
			if sizes[r.label] == nil {
				sizes[r.label] = map[string]int64{}
			}
			sizes[r.label][f] = m.Summarize().Total
			line += fmt.Sprintf(" %.4f (%d B) |", fixtureErr(t, be, f, p), m.Summarize().Total)
		}
		t.Log(line)
	}
	// Budget packs: halfway between mixed g32 and q8, and the q8 size.
	budgets := map[string][]int64{}
	lines := []string{"| budget ½(mixed+q8), measured |", "| budget = q8 size, measured |", "| budget ½(mixed+q8), proxy |", "| budget = q8 size, proxy |"}
	for _, f := range fixtures {
		dir := filepath.Join(golden.Dir(t), f)
		lo, hi := sizes["mixed g32"][f], sizes["q8 (per channel)"][f]
		budgets[f] = []int64{(lo + hi) / 2, hi}
		for k, method := range []string{SensMeasure, SensProxy} {
			start := time.Now()
			_, sens, st, err := Plan(dir, Policy{Group: 32, BudgetBytes: 1 << 40, Sensitivity: method})
			require.NoError(t, err)
			if method == SensMeasure {
				_, prox, _, err := Plan(dir, Policy{Group: 32, BudgetBytes: 1 << 40, Sensitivity: SensProxy})
				require.NoError(t, err)
				var a, b []float64
				for i := range sens {
					a, b = append(a, sens[i].Err["q4"]), append(b, prox[i].Err["q4"])
				}
				t.Logf("%s: %d weights measured in %v; Spearman(measured, proxy) of the q4 errors = %.2f", f, len(sens), time.Since(start).Round(time.Millisecond), spearman(a, b))
			}
			for bi, b := range budgets[f] {
				plan, pst, err := PlanBudget(sens, st.Fixed, b)
				require.NoError(t, err)
				out := t.TempDir()
				m, err := Convert(dir, out, Policy{Group: 32, BudgetBytes: b, Plan: plan}, 0, nil)
				require.NoError(t, err)
				require.LessOrEqual(t, m.Summarize().Total, b)
				p, err := Open(out)
				require.NoError(t, err)
				lines[2*k+bi] += fmt.Sprintf(" %.4f (%d B; %d/%d/%d q4/q8/f16) |", fixtureErr(t, be, f, p), m.Summarize().Total, pst.Count["q4"], pst.Count["q8"], pst.Count["f16"])
				p.Close()
			}
		}
	}
	for _, l := range lines {
		t.Log(l)
	}
}

// TestPackSD15Sizes prints pack sizes for the real SD-1.5 shapes (names and
// shapes from the loaders with synthetic weights; sizes from ExpectedBytes,
// exactly what Writer stores). Needs ~4 GB of memory: RETRACE_PACK_NUMBERS=1.
func TestPackSD15Sizes(t *testing.T) {
	if os.Getenv("RETRACE_PACK_NUMBERS") == "" {
		t.Skip("set RETRACE_PACK_NUMBERS=1")
	}
	type ent struct {
		name  string
		shape []int
	}
	record := func(load func(w *nn.Weights) func()) []ent {
		var es []ent
		be := nn.NewCPU()
		w := nn.NewSynthWeights(be, 1)
		synth := w.Synth
		w.Synth = func(name string, shape []int) []float32 {
			es = append(es, ent{name, append([]int(nil), shape...)})
			return synth(name, shape)
		}
		free := load(w)
		require.NoError(t, w.Err())
		free()
		return es
	}
	comps := map[string][]ent{
		"unet": record(func(w *nn.Weights) func() {
			m, err := nn.LoadUNet2DConditionModel(nn.SD15UNetConfig(), w)
			require.NoError(t, err)
			return m.Free
		}),
		"vae": record(func(w *nn.Weights) func() {
			m, err := nn.LoadAutoencoderKL(nn.SD15VAEConfig(), w)
			require.NoError(t, err)
			return m.Free
		}),
		"text_encoder": record(func(w *nn.Weights) func() {
			m, err := nn.LoadCLIPTextModel(nn.CLIPTextConfig{VocabSize: 49408, HiddenSize: 768, IntermediateSize: 3072,
				NumHiddenLayers: 12, NumAttentionHeads: 12, MaxPositionEmbeddings: 77, HiddenAct: "quick_gelu",
				LayerNormEps: 1e-5, BosTokenID: 49406, EosTokenID: 49407, PadTokenID: 1}, w)
			require.NoError(t, err)
			return m.Free
		}),
	}
	for _, pol := range []Policy{{Mode: "f32"}, {Mode: "f16"}, {Mode: "q8"}, {Mode: "q4", Group: 32}, {Mode: "q4", Group: 64}, {Mode: "q4", Group: 128}, {Mode: "mixed", Group: 64}, {Mode: "mixed", Group: 128}} {
		row := fmt.Sprintf("| %s g%d |", pol.Mode, pol.Group)
		var total int64
		for _, c := range []string{"unet", "vae", "text_encoder"} {
			var b, params int64
			for _, e := range comps[c] {
				f, g := pol.Choose(e.name, e.shape)
				n, _, err := ExpectedBytes(Tensor{Name: e.name, Shape: e.shape, Format: f, Group: g})
				require.NoError(t, err)
				b += (n + 63) / 64 * 64
				k := int64(1)
				for _, d := range e.shape {
					k *= int64(d)
				}
				params += k
			}
			total += b
			row += fmt.Sprintf(" %.1f |", float64(b)/1e6)
			if pol.Mode == "f32" {
				t.Logf("%s: %d tensors, %d parameters", c, len(comps[c]), params)
			}
		}
		t.Log(row + fmt.Sprintf(" %.1f |", float64(total)/1e6))
	}
	_ = filepath.Join
}

// TestPackNumbersFashion measures the storage formats on the trained
// default model's UNet (testdata/golden-fashion/unet: models/fashion's UNet
// with its diffusers f32 input/output pair): relative L2 of out.sample vs
// diffusers, per storage, and the budget plans. RETRACE_PACK_NUMBERS=1.
func TestPackNumbersFashion(t *testing.T) {
	if os.Getenv("RETRACE_PACK_NUMBERS") == "" {
		t.Skip("set RETRACE_PACK_NUMBERS=1")
	}
	dir := filepath.Join(golden.Dir(t), "..", "golden-fashion", "unet")
	io, err := safetensors.Open(filepath.Join(dir, "io.safetensors"))
	require.NoError(t, err)
	defer io.Close()
	be := nn.NewCPU()
	shape, x := golden.F32(t, io, "in.sample")
	_, ts := golden.Ints(t, io, "in.timestep")
	cs, c := golden.F32(t, io, "in.encoder_hidden_states")
	_, want := golden.F32(t, io, "out.sample")
	tf := make([]float32, len(ts))
	for i, v := range ts {
		tf[i] = float32(v)
	}
	run := func(pol Policy, minmax bool) (float64, int64) {
		if minmax {
			nn.Q4Search = -1
		}
		out := t.TempDir()
		m, err := Convert(dir, out, pol, 0, nil)
		nn.Q4Search = 4
		require.NoError(t, err)
		p, err := Open(out)
		require.NoError(t, err)
		defer p.Close()
		u, err := p.UNet(be)
		require.NoError(t, err)
		defer u.Free()
		y, err := u.Forward(be, be.Upload(shape, x), tf, be.Upload(cs, c))
		require.NoError(t, err)
		got, err := be.Read(y)
		require.NoError(t, err)
		return relL2(want, got), m.Summarize().Total
	}
	sizes := map[string]int64{}
	row := func(label string, pol Policy, minmax bool) {
		e, n := run(pol, minmax)
		sizes[label] = n
		t.Logf("| %s | %.4f | %d |", label, e, n)
	}
	row("f32", Policy{Mode: "f32"}, false)
	row("f16", Policy{Mode: "f16"}, false)
	row("q8 (per channel)", Policy{Mode: "q8"}, false)
	for _, g := range []int{32, 64, 128} {
		row(fmt.Sprintf("q4 g%d min/max", g), Policy{Mode: "q4", Group: g}, true)
		row(fmt.Sprintf("q4 g%d search", g), Policy{Mode: "q4", Group: g}, false)
	}
	row("mixed g32", Policy{Mode: "mixed", Group: 32}, false)
	row("mixed g64", Policy{Mode: "mixed", Group: 64}, false)
	lo, hi := sizes["mixed g32"], sizes["q8 (per channel)"]
	var meas, prox []Sensitivity
	for _, method := range []string{SensMeasure, SensProxy} {
		start := time.Now()
		_, sens, st, err := Plan(dir, Policy{Group: 32, BudgetBytes: 1 << 40, Sensitivity: method})
		require.NoError(t, err)
		t.Logf("%s: %d weights in %v", method, len(sens), time.Since(start).Round(time.Millisecond))
		if method == SensMeasure {
			meas = sens
		} else {
			prox = sens
		}
		for _, b := range []int64{lo + (hi-lo)/4, (lo + hi) / 2, hi} {
			plan, pst, err := PlanBudget(sens, st.Fixed, b)
			require.NoError(t, err)
			e, n := run(Policy{Group: 32, BudgetBytes: b, Plan: plan}, false)
			t.Logf("| budget %d B, %s | %.4f | %d (%d/%d/%d q4/q8/f16) |", b, method, e, n, pst.Count["q4"], pst.Count["q8"], pst.Count["f16"])
		}
	}
	var a, b []float64
	for i := range meas {
		a, b = append(a, meas[i].Err["q4"]), append(b, prox[i].Err["q4"])
	}
	t.Logf("Spearman(measured, proxy) of the q4 errors = %.2f", spearman(a, b))
}

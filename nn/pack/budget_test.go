package pack

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
)

// The planner keeps the budget and gives bits where err² drops most per byte.
func TestBudgetPlan(t *testing.T) {
	mk := func(name string, e4, e8 float64) Sensitivity {
		return Sensitivity{Component: "unet", Name: name, Shape: []int{64, 64}, Group: 32,
			Err:   map[string]float64{"q4": e4, "q8": e8},
			Bytes: map[string]int64{"q4": 2560, "q8": 4352, "f16": 8192}}
	}
	sens := []Sensitivity{mk("a.weight", 0.01, 0.001), mk("b.weight", 0.2, 0.01), mk("c.weight", 0.05, 0.003)}
	for _, tc := range []struct {
		budget int64
		want   map[string]string
	}{
		{1000 + 3*2560, map[string]string{"a.weight": "q4", "b.weight": "q4", "c.weight": "q4"}},
		{1000 + 2*2560 + 4352, map[string]string{"a.weight": "q4", "b.weight": "q8", "c.weight": "q4"}},
		{1000 + 2560 + 2*4352, map[string]string{"a.weight": "q4", "b.weight": "q8", "c.weight": "q8"}},
		{1000 + 2560 + 4352 + 8192, map[string]string{"a.weight": "q8", "b.weight": "q8", "c.weight": "q8"}},
		{1000 + 4352 + 4352 + 8192, map[string]string{"a.weight": "q8", "b.weight": "f16", "c.weight": "q8"}},
		{1 << 30, map[string]string{"a.weight": "f16", "b.weight": "f16", "c.weight": "f16"}},
	} {
		plan, st, err := PlanBudget(sens, 1000, tc.budget)
		require.NoError(t, err)
		require.LessOrEqual(t, st.Bytes, tc.budget)
		for n, f := range tc.want {
			require.Equal(t, f, plan["unet"][n].Format, "budget %d, %s", tc.budget, n)
		}
		for n, c := range plan["unet"] {
			if c.Format == "q4" {
				require.Equal(t, 32, c.Group, n)
			}
		}
	}
	_, _, err := PlanBudget(sens, 1000, 1000+3*2560-1)
	require.ErrorContains(t, err, "below the smallest pack")
}

// loadMap reads a fixture's weights into memory.
func loadMap(t *testing.T, name string) (nn.MapSource, []byte) {
	dir := filepath.Join(golden.Dir(t), name)
	cfg, src, closer, err := openComponent(dir)
	require.NoError(t, err)
	defer closer()
	m := nn.MapSource{}
	for _, n := range src.Names() {
		s, _ := src.Shape(n)
		v, err := src.Float32(n)
		require.NoError(t, err)
		m[n] = nn.MapTensor{Shape: s, Data: v}
	}
	return m, cfg
}

// A layer made sensitive (one input channel scaled ×30, an outlier channel
// that stretches every row's first quantization group) measures the most
// sensitive, and a budget plan keeps more bits for it than for the same
// layer unscaled.
func TestBudgetSensitiveLayer(t *testing.T) {
	src, cfg := loadMap(t, "clip_text_tiny")
	const layer = "text_model.encoder.layers.1.mlp.fc2.weight"
	start := time.Now()
	plain, err := MeasureSensitivity("text_encoder", cfg, src, 32, SensMeasure)
	require.NoError(t, err)
	t.Logf("clip_text_tiny: %d tensors measured in %v", len(plain), time.Since(start))

	scaled := nn.MapSource{}
	for n, v := range src {
		scaled[n] = v
	}
	v := append([]float32(nil), src[layer].Data...)
	rl := len(v) / src[layer].Shape[0]
	for i := 0; i < len(v); i += rl {
		v[i] *= 30 // input channel 0: an outlier in every row's first group
	}
	scaled[layer] = nn.MapTensor{Shape: src[layer].Shape, Data: v}
	hot, err := MeasureSensitivity("text_encoder", cfg, scaled, 32, SensMeasure)
	require.NoError(t, err)

	rank := func(sens []Sensitivity) (int, Sensitivity) {
		var me Sensitivity
		for _, s := range sens {
			if s.Name == layer {
				me = s
			}
		}
		r := 0
		for _, s := range sens {
			if s.Err["q4"] > me.Err["q4"] {
				r++
			}
		}
		return r, me
	}
	r0, s0 := rank(plain)
	r1, s1 := rank(hot)
	t.Logf("%s: q4 err %.4f (rank %d) → channel 0 ×30: %.4f (rank %d)", layer, s0.Err["q4"], r0, s1.Err["q4"], r1)
	require.True(t, s0.Measured && s1.Measured)
	require.Equal(t, 0, r1, "the scaled layer is the most sensitive")
	require.Greater(t, r0, 0)

	// A budget with room for one upgrade: the scaled layer takes it.
	var all int64
	for _, s := range hot {
		all += s.Bytes["q4"]
	}
	budget := all + s1.Bytes["q8"] - s1.Bytes["q4"]
	plan, st, err := PlanBudget(hot, 0, budget)
	require.NoError(t, err)
	require.LessOrEqual(t, st.Bytes, budget)
	require.Equal(t, "q8", plan["text_encoder"][layer].Format)
	plan, _, err = PlanBudget(plain, 0, budget)
	require.NoError(t, err)
	require.Equal(t, "q4", plan["text_encoder"][layer].Format)
}

// Convert with a budget writes a pack no larger than the budget, between
// the q4 and the f16 sizes, that loads and runs. (clip_text_tiny: the
// measurement is 12 tensors; the tiny UNet's 15 s is left to the numbers.)
func TestBudgetConvert(t *testing.T) {
	dir := filepath.Join(golden.Dir(t), "clip_text_tiny")
	_, q4 := convertFixture(t, "clip_text_tiny", Policy{Mode: "mixed", Group: 32}, 0)
	_, f16 := convertFixture(t, "clip_text_tiny", Policy{Mode: "f16"}, 0)
	lo, hi := q4.Summarize().Total, f16.Summarize().Total
	for i, budget := range []int64{lo + (hi-lo)/8, lo + (hi-lo)/2} {
		out := t.TempDir()
		m, err := Convert(dir, out, Policy{Group: 32, BudgetBytes: budget}, 256<<10, nil)
		require.NoError(t, err)
		total := m.Summarize().Total
		formats := m.Summarize().Components["text_encoder"]
		t.Logf("budget %d B (q4 %d, f16 %d): pack %d B, %d q4, %d q8 weights", budget, lo, hi, total, formats["q4"].Tensors, formats["q8"].Tensors)
		require.LessOrEqual(t, total, budget)
		require.Greater(t, total, lo)
		if i == 0 {
			require.Positive(t, formats["q4"].Tensors)
		}
		p, err := Open(out)
		require.NoError(t, err)
		be := nn.NewCPU()
		clip, err := p.TextEncoder(be)
		require.NoError(t, err)
		_, err = clip.Forward(be, [][]int{{0, 5, 7, 2}}, false)
		require.NoError(t, err)
		clip.Free()
		p.Close()
	}
	_, err := Convert(dir, t.TempDir(), Policy{Group: 32, BudgetBytes: lo / 2}, 0, nil)
	require.ErrorContains(t, err, "below the smallest pack")
	_, err = Convert(dir, t.TempDir(), Policy{Group: 32, BudgetBytes: hi, Sensitivity: "guess"}, 0, nil)
	require.ErrorContains(t, err, "unknown sensitivity method")
}

// The proxy needs no model: it is the weight's own relative error.
func TestBudgetProxy(t *testing.T) {
	src, cfg := loadMap(t, "unet2dcond_tiny")
	sens, err := MeasureSensitivity("unet", cfg, src, 64, SensProxy)
	require.NoError(t, err)
	require.NotEmpty(t, sens)
	for _, s := range sens {
		require.False(t, s.Measured)
		require.Greater(t, s.Err["q4"], s.Err["q8"], s.Name)
		require.Less(t, s.Err["q4"], 0.2, s.Name)
	}
}

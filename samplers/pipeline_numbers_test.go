package samplers

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/pack"
)

func psnr(want, got []float32) float64 {
	var se float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(float64(len(want))/se) // peak 1: images are in [0, 1]
}

// TestPipelinePackNumbers prints the pipeline table of docs/PACK.md: the
// whole sd_pipeline_tiny (its golden call: 16×16, 10 DDIM steps, guidance
// 7.5) from packs of each storage vs the f32 folder, same seed: the final
// image's PSNR and relative L2. Slow: RETRACE_PACK_NUMBERS=1.
func TestPipelinePackNumbers(t *testing.T) {
	if os.Getenv("RETRACE_PACK_NUMBERS") == "" {
		t.Skip("set RETRACE_PACK_NUMBERS=1")
	}
	folder := tinyPipelineFolder(t)
	be := nn.NewCPU()
	opts := GenerateOptions{Prompt: "a photo of an astronaut riding a horse", Steps: 10, Guidance: 7.5, Seed: 3, Height: 16, Width: 16}
	gen := func(path string) []float32 {
		sd, err := LoadStableDiffusionAny(be, path, nn.F32)
		require.NoError(t, err)
		defer sd.Free()
		_, img, err := sd.Generate(be, opts)
		require.NoError(t, err)
		return read(t, be, img)
	}
	want := gen(folder)
	sizes := map[string]int64{}
	row := func(label string, pol pack.Policy, minmax bool) {
		if minmax {
			nn.Q4Search = -1
		}
		out := filepath.Join(t.TempDir(), "pack")
		m, err := pack.Convert(folder, out, pol, 0, nil)
		nn.Q4Search = 4
		require.NoError(t, err)
		got := gen(out)
		s := m.Summarize()
		sizes[label] = s.Total
		t.Logf("| %s | %.1f | %.4f | %d |", label, psnr(want, got), relDiff(got, want), s.Total)
	}
	row("f16", pack.Policy{Mode: "f16"}, false)
	row("q8 (per channel)", pack.Policy{Mode: "q8"}, false)
	for _, g := range []int{32, 64, 128} {
		row(fmt.Sprintf("q4 g%d min/max", g), pack.Policy{Mode: "q4", Group: g}, true)
		row(fmt.Sprintf("q4 g%d search", g), pack.Policy{Mode: "q4", Group: g}, false)
	}
	row("mixed g32", pack.Policy{Mode: "mixed", Group: 32}, false)
	row("mixed g64", pack.Policy{Mode: "mixed", Group: 64}, false)
	lo, hi := sizes["mixed g32"], sizes["q8 (per channel)"]
	for _, method := range []string{pack.SensMeasure, pack.SensProxy} {
		start := time.Now()
		_, sens, st, err := pack.Plan(folder, pack.Policy{Group: 32, BudgetBytes: 1 << 40, Sensitivity: method})
		require.NoError(t, err)
		t.Logf("%s sensitivity of %d weights: %v", method, len(sens), time.Since(start).Round(time.Millisecond))
		for _, b := range []int64{(lo + hi) / 2, hi} {
			plan, _, err := pack.PlanBudget(sens, st.Fixed, b)
			require.NoError(t, err)
			row(fmt.Sprintf("budget %.2f MiB, %s", float64(b)/(1<<20), method), pack.Policy{Group: 32, BudgetBytes: b, Plan: plan}, false)
		}
	}
}

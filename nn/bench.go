package nn

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"time"
)

// BenchCase is one op benchmark run on both backends by `retrace bench` and
// the Go benchmarks. Setup uploads inputs and returns a function that
// records one execution of the op and returns its output (which the runner
// reads back to wait for it, then frees).
type BenchCase struct {
	Op    string  // e.g. "matmul"
	Shape string  // e.g. "1024x1024x1024"
	FLOPs float64 // floating-point operations per run (0: not reported)
	// CPUSkip marks cases too slow for the reference backend.
	CPUSkip bool
	Setup   func(be Backend) (run func() *Tensor, cleanup func())
}

// BenchResult is one line of `retrace bench --json`.
type BenchResult struct {
	Op        string  `json:"op"`
	Shape     string  `json:"shape"`
	Backend   string  `json:"backend"`
	Adapter   string  `json:"adapter"`
	Ms        float64 `json:"ms"`
	GFLOPs    float64 `json:"gflops,omitempty"`
	Iters     int     `json:"iters"`
	PeakBytes uint64  `json:"peak_gpu_bytes,omitempty"`
	Variant   string  `json:"variant,omitempty"`
	Error     string  `json:"error,omitempty"`
}

var benchCases []BenchCase

func registerBench(c ...BenchCase) { benchCases = append(benchCases, c...) }

// BenchCases lists the registered cases sorted by op and shape.
func BenchCases() []BenchCase {
	out := append([]BenchCase(nil), benchCases...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Op != out[j].Op {
			return out[i].Op < out[j].Op
		}
		return out[i].Shape < out[j].Shape
	})
	return out
}

// RunBench times case bc on backend be: one warm-up run, then runs until
// minTime has passed (at least minIters). Each run is waited for.
func RunBench(be Backend, adapter string, bc BenchCase, minTime time.Duration, minIters int) BenchResult {
	r := BenchResult{Op: bc.Op, Shape: bc.Shape, Backend: be.Name(), Adapter: adapter}
	be.ClearErr()
	run, cleanup := bc.Setup(be)
	if cleanup != nil {
		defer cleanup()
	}
	if err := be.Err(); err != nil || run == nil {
		r.Error = fmt.Sprint(err)
		return r
	}
	g, _ := be.(*GPU)
	if g != nil {
		// Start from an empty pool so the peak is this case's own.
		g.Dev.Trim()
	}
	once := func() error {
		out := run()
		if out == nil {
			return be.Err()
		}
		// Reading one element waits for the whole batch.
		flat := Reshape(out, -1, 1)
		first := Narrow(flat, 0, 1)
		_, err := be.Read(first)
		Free(out, flat, first)
		return err
	}
	if err := once(); err != nil {
		r.Error = err.Error()
		return r
	}
	if g != nil {
		g.Dev.ResetPeak()
	}
	start := time.Now()
	n := 0
	for n < minIters || time.Since(start) < minTime {
		if err := once(); err != nil {
			r.Error = err.Error()
			return r
		}
		n++
	}
	el := time.Since(start)
	r.Iters = n
	r.Ms = float64(el.Microseconds()) / 1000 / float64(n)
	if bc.FLOPs > 0 {
		r.GFLOPs = bc.FLOPs / (r.Ms / 1000) / 1e9
	}
	if g != nil {
		r.PeakBytes = g.Dev.Stats().Peak
		r.Variant = g.variantFor(bc.Op)
	}
	return r
}

// RunBenches runs every case whose "op/shape" matches filter (a regexp; empty
// matches all) on each given backend, in the same process and run.
func RunBenches(bes []Backend, adapter string, filter string, minTime time.Duration, emit func(BenchResult)) error {
	re, err := regexp.Compile(filter)
	if err != nil {
		return fmt.Errorf("bench filter: %w", err)
	}
	for _, bc := range BenchCases() {
		if !re.MatchString(bc.Op + "/" + bc.Shape) {
			continue
		}
		for _, be := range bes {
			if bc.CPUSkip && be.Name() == "cpu" {
				continue
			}
			a := adapter
			if be.Name() == "cpu" {
				a = "go"
			}
			emit(RunBench(be, a, bc, minTime, 2))
		}
	}
	return nil
}

// variantFor reports the kernel variant the GPU backend last used for op.
func (g *GPU) variantFor(op string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if v, ok := g.Variants[op]; ok {
		return v
	}
	return g.used[op]
}

// benchData returns n values uniform in [−1, 1) from seed.
func benchData(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	v := make([]float32, n)
	for i := range v {
		v[i] = r.Float32()*2 - 1
	}
	return v
}

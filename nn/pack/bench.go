package pack

import (
	"fmt"
	"sort"
	"time"

	"retrace/nn"
)

// StorageBenches lists the SD-1.5 UNet step benchmarks by weight storage
// (`retrace bench --model sd15-unet-q4` …). nn's "sd15-unet" is the f16 one.
var StorageBenches = []string{"sd15-unet-f32", "sd15-unet-q8", "sd15-unet-q4"}

// synthSource serves the synthetic weights of nn.NewSynthWeights (the same
// values for a name) as a TensorSource, quantized by a Policy as a pack
// would store them: loading from it is loading from a converted pack,
// without writing the pack.
type synthSource struct {
	shapes map[string][]int
	synth  func(name string, shape []int) []float32
	pol    Policy
}

func (s synthSource) Names() []string {
	n := make([]string, 0, len(s.shapes))
	for k := range s.shapes {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func (s synthSource) Shape(name string) ([]int, bool) { v, ok := s.shapes[name]; return v, ok }

func (s synthSource) Float32(name string) ([]float32, error) {
	return s.synth(name, s.shapes[name]), nil
}

func (s synthSource) Float16Bits(string) ([]uint16, bool, error) { return nil, false, nil }

// Quantized implements nn.QuantSource.
func (s synthSource) Quantized(name string) (*nn.QuantTensor, bool, error) {
	f, g := s.pol.Choose(name, s.shapes[name])
	if f != "q8" && f != "q4" {
		return nil, false, nil
	}
	dt := nn.Q8
	if f == "q4" {
		dt = nn.Q4
	}
	q, err := nn.Quantize(dt, s.shapes[name], s.synth(name, s.shapes[name]), g)
	return q, err == nil, err
}

// sd15UNetShapes records the names and shapes of the SD-1.5 UNet's
// parameters (a load on the CPU reference with synthetic weights).
func sd15UNetShapes() (map[string][]int, error) {
	shapes := map[string][]int{}
	w := nn.NewSynthWeights(nn.NewCPU(), 1)
	synth := w.Synth
	w.Synth = func(name string, shape []int) []float32 {
		shapes[name] = append([]int(nil), shape...)
		return synth(name, shape)
	}
	m, err := nn.LoadUNet2DConditionModel(nn.SD15UNetConfig(), w)
	if err != nil {
		return nil, err
	}
	m.Free()
	return shapes, nil
}

// BenchSD15UNetStorage times one SD-1.5 UNet step (latents 64×64, batch 2,
// 77 context tokens, as nn's "sd15-unet") with the weights stored as a
// pack of the given storage would hold them: "f32", "q8" (per output
// channel) or "q4" (the mixed policy, group 64), synthetic values. On a GPU
// the storage bindings are capped at bindLimit bytes (0: the device's).
// Like nn.BenchModel it runs once to warm up, then runs times, and reports
// the mean time and the peak GPU memory of the timed runs; cold is the
// time of the warm-up run (kernel compilation included).
func BenchSD15UNetStorage(be nn.Backend, adapter, name string, runs int, bindLimit uint64) (r nn.BenchResult, cold time.Duration, err error) {
	r = nn.BenchResult{Op: name, Backend: be.Name(), Adapter: adapter, Shape: "2x4x64x64,ctx 2x77x768"}
	var src nn.TensorSource
	w := nn.NewSynthWeights(be, 1)
	switch name {
	case "sd15-unet-f32":
		w.Storage = nn.F32
	case "sd15-unet-q8", "sd15-unet-q4":
		shapes, err := sd15UNetShapes()
		if err != nil {
			return r, 0, err
		}
		pol := Policy{Mode: "q8"}
		if name == "sd15-unet-q4" {
			pol = Policy{Mode: "mixed", Group: 64}
		}
		src = synthSource{shapes: shapes, synth: w.Synth, pol: pol}
		w = nn.NewWeights(be, src)
		w.Storage = nn.F16
	default:
		return r, 0, fmt.Errorf("unknown storage benchmark %q (have %v)", name, StorageBenches)
	}
	g, _ := be.(*nn.GPU)
	if g != nil && bindLimit > 0 {
		g.BindLimit = bindLimit
		r.Variant = fmt.Sprintf("bind limit %d MiB", bindLimit>>20)
	}
	m, err := nn.LoadUNet2DConditionModel(nn.SD15UNetConfig(), w)
	if err != nil {
		return r, 0, err
	}
	defer m.Free()
	x := be.Upload([]int{2, 4, 64, 64}, benchInput(2*4*64*64))
	ctx := be.Upload([]int{2, 77, 768}, benchInput(2*77*768))
	defer nn.Free(x, ctx)
	once := func() error {
		out, err := m.Forward(be, x, []float32{981}, ctx)
		if err != nil {
			return err
		}
		_, err = be.Read(out)
		nn.Free(out)
		return err
	}
	start := time.Now()
	if err := once(); err != nil {
		return r, 0, err
	}
	cold = time.Since(start)
	if g != nil {
		g.Dev.ResetPeak()
	}
	start = time.Now()
	for i := 0; i < max(runs, 1); i++ {
		if err := once(); err != nil {
			return r, cold, err
		}
	}
	r.Iters = max(runs, 1)
	r.Ms = float64(time.Since(start).Microseconds()) / 1000 / float64(r.Iters)
	if g != nil {
		r.PeakBytes = g.Dev.Stats().Peak
	}
	return r, cold, nil
}

// benchInput is nn's synthetic benchmark input (the same LCG values).
func benchInput(n int) []float32 {
	v := make([]float32, n)
	s := uint32(12345)
	for i := range v {
		s = s*1664525 + 1013904223
		v[i] = float32(int32(s>>8)-(1<<23)) / float32(1<<23)
	}
	return v
}

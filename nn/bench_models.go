package nn

import (
	"fmt"
	"time"
)

// ModelBenches lists the whole-model benchmarks of `retrace bench --model`.
var ModelBenches = []string{"sd15-unet", "sd15-vae-decoder"}

// BenchModel builds a model with the real configuration and synthetic
// weights (F16 storage), runs it once to warm up kernels and then once
// timed, and reports the time and the peak GPU memory of the timed run.
//
//	sd15-unet:        one SD-1.5 UNet step, latents 64×64, batch 2 (CFG),
//	                  77 context tokens
//	sd15-vae-decoder: SD-1.5 VAE decode of one 64×64 latent to 512×512
func BenchModel(be Backend, adapter, name string, runs int) (BenchResult, error) {
	r := BenchResult{Op: name, Backend: be.Name(), Adapter: adapter}
	w := NewSynthWeights(be, 1)
	w.Storage = F16
	var run func() (*Tensor, error)
	var cleanup func()
	switch name {
	case "sd15-unet":
		r.Shape = "2x4x64x64,ctx 2x77x768"
		m, err := LoadUNet2DConditionModel(SD15UNetConfig(), w)
		if err != nil {
			return r, err
		}
		x := be.Upload([]int{2, 4, 64, 64}, synthInput(2*4*64*64))
		ctx := be.Upload([]int{2, 77, 768}, synthInput(2*77*768))
		run = func() (*Tensor, error) { return m.Forward(be, x, []float32{981}, ctx) }
		cleanup = func() { Free(x, ctx); m.Free() }
	case "sd15-vae-decoder":
		r.Shape = "1x4x64x64->1x3x512x512"
		m, err := LoadAutoencoderKL(SD15VAEConfig(), w)
		if err != nil {
			return r, err
		}
		z := be.Upload([]int{1, 4, 64, 64}, synthInput(4*64*64))
		run = func() (*Tensor, error) { return m.Decode(be, z) }
		cleanup = func() { Free(z); m.Free() }
	default:
		return r, fmt.Errorf("unknown model benchmark %q (have %v)", name, ModelBenches)
	}
	defer cleanup()
	once := func() error {
		out, err := run()
		if err != nil {
			return err
		}
		_, err = be.Read(out)
		Free(out)
		return err
	}
	if err := once(); err != nil { // warm-up: compiles kernels, fills the pool
		return r, err
	}
	g, _ := be.(*GPU)
	if g != nil {
		g.Dev.ResetPeak()
	}
	start := time.Now()
	for i := 0; i < max(runs, 1); i++ {
		if err := once(); err != nil {
			return r, err
		}
	}
	r.Iters = max(runs, 1)
	r.Ms = float64(time.Since(start).Microseconds()) / 1000 / float64(r.Iters)
	if g != nil {
		r.PeakBytes = g.Dev.Stats().Peak
	}
	return r, nil
}

func synthInput(n int) []float32 {
	v := make([]float32, n)
	s := uint32(12345)
	for i := range v {
		s = s*1664525 + 1013904223
		v[i] = float32(int32(s>>8)-(1<<23)) / float32(1<<23)
	}
	return v
}

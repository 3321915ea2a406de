//go:build !js

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"retrace/nn"
	"retrace/nn/gpu"
	"retrace/nn/imageio"
	"retrace/samplers"
)

func init() {
	commands = append(commands, command{"generate", "text to image with a diffusers pipeline folder or a pack (--model, --prompt, --out)", cmdGenerate})
}

// modelFlags are the flags shared by the commands that run a pipeline.
type modelFlags struct {
	model, backend string
	f16            bool
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.model, "model", "", "diffusers pipeline folder (model_index.json) or retrace pack (manifest.json)")
	fs.StringVar(&m.backend, "backend", "gpu", "gpu (WebGPU) or cpu (the Go reference)")
	fs.BoolVar(&m.f16, "f16", false, "store weights of diffusers folders as f16 on the device")
}

func (m *modelFlags) backendOf() (nn.Backend, func(), error) {
	switch m.backend {
	case "gpu":
		g, err := nn.OpenGPU(gpu.Options{})
		if err != nil {
			return nil, nil, err
		}
		g.Autotune()
		return g, g.Dev.Close, nil
	case "cpu":
		return nn.NewCPU(), func() {}, nil
	}
	return nil, nil, fmt.Errorf("--backend %q: want gpu or cpu", m.backend)
}

func (m *modelFlags) load(be nn.Backend) (*samplers.StableDiffusion, error) {
	if m.model == "" {
		return nil, errors.New("--model is required")
	}
	st := nn.F32
	if m.f16 {
		st = nn.F16
	}
	return samplers.LoadStableDiffusionAny(be, m.model, st)
}

// writeImage encodes img [1, 3, H, W] (or [1, 1, H, W], grayscale) in [0, 1] to path.
func writeImage(be nn.Backend, img *nn.Tensor, path string) error {
	v, err := be.Read(img)
	if err != nil {
		return err
	}
	for i := range v {
		v[i] = v[i]*2 - 1
	}
	h, w := img.Dim(2), img.Dim(3)
	if img.Dim(1) == 1 { // grayscale (pixel-space models such as models/fashion)
		v = append(append(v, v...), v...)
	}
	pic, err := imageio.FromCHW(v, w, h)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := imageio.Encode(f, pic, path); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cmdGenerate(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	prompt := fs.String("prompt", "", "text prompt")
	negative := fs.String("negative", "", "negative prompt")
	steps := fs.Int("steps", 25, "sampling steps")
	guidance := fs.Float64("guidance", 7.5, "classifier-free guidance scale")
	seed := fs.Uint64("seed", 0, "noise seed (same seed, same image natively and in the browser)")
	size := fs.Int("size", 0, "image size in pixels (default: the UNet's sample_size × the VAE factor)")
	dst := fs.String("out", "out.png", "output image (.png or .jpg)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	be, done, err := mf.backendOf()
	if err != nil {
		return err
	}
	defer done()
	sd, err := mf.load(be)
	if err != nil {
		return err
	}
	defer sd.Free()
	s := *size
	if s == 0 {
		s = sd.UNet.Config.SampleSize * sd.Factor()
	}
	start := time.Now()
	x, img, err := sd.Generate(be, samplers.GenerateOptions{
		Prompt: *prompt, NegativePrompt: *negative, Steps: *steps, Guidance: float32(*guidance),
		Seed: *seed, Height: s, Width: s,
		OnStep: func(k int, t float32, _ *nn.Tensor) error {
			fmt.Fprintf(out, "\rstep %d/%d (t=%g)", k+1, *steps, t)
			return nil
		},
	})
	fmt.Fprintln(out)
	if err != nil {
		return err
	}
	defer nn.Free(x, img)
	if err := writeImage(be, img, *dst); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%d×%d) in %.1fs\n", *dst, s, s, time.Since(start).Seconds())
	return nil
}

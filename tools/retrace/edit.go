//go:build !js

package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"retrace/nn"
	"retrace/nn/imageio"
	"retrace/nn/safetensors"
	"retrace/samplers"
)

func init() {
	commands = append(commands,
		command{"edit", "edit a real image: invert under --source, regenerate under --target (--method ddim|edict|bdia|ef-ddpm|direct)", cmdEdit},
		command{"invert", "invert an image and save the inverted latents (.safetensors)", cmdInvert},
		command{"roundtrip", "invert and reconstruct with every method; report the error (--json)", cmdRoundtrip},
	)
}

// loadImage reads a PNG/JPEG and centre-crops/resizes it to size×size,
// returning [1, 3, size, size] in [−1, 1].
func loadImage(be nn.Backend, path string, size int) (*nn.Tensor, error) {
	img, err := loadPicture(path)
	if err != nil {
		return nil, err
	}
	v, crop, err := imageio.ToCHW(img, size, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if crop != img.Bounds() {
		fmt.Fprintf(os.Stderr, "cropped %s to %v and resized to %d×%d\n", path, crop, size, size)
	}
	return be.Upload([]int{1, 3, size, size}, v), be.Err()
}

func modelSize(sd *samplers.StableDiffusion, size int) int {
	if size > 0 {
		return size
	}
	f := 1
	if sd.VAE != nil {
		f = sd.VAE.Factor()
	}
	return sd.UNet.Config.SampleSize * f
}

func parseReweight(s string) (map[string]float32, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]float32{}
	for _, kv := range strings.Split(s, ",") {
		w, v, ok := strings.Cut(kv, "=")
		f, err := strconv.ParseFloat(v, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("--reweight %q: want word=factor,…", kv)
		}
		out[w] = float32(f)
	}
	return out, nil
}

func cmdEdit(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("edit", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	in := fs.String("image", "", "input image (.png or .jpg)")
	src := fs.String("source", "", "prompt describing the input image")
	tgt := fs.String("target", "", "prompt describing the edit")
	method := fs.String("method", "edict", "ddim, edict, bdia, ef-ddpm or direct (Direct Inversion + prompt-to-prompt)")
	steps := fs.Int("steps", 50, "inversion and sampling steps")
	guidance := fs.Float64("guidance", 3, "classifier-free guidance scale")
	recon := fs.Bool("reconstruct", false, "regenerate under the source prompt (shows how exact the inversion is)")
	skip := fs.Int("skip", 0, "edit-friendly DDPM: start T_skip steps below the top")
	seed := fs.Uint64("seed", 0, "noise seed (edit-friendly DDPM)")
	cross := fs.Float64("cross", 0.8, "direct: fraction of steps with cross-attention replacement")
	self := fs.Float64("self", 0.4, "direct: fraction of steps with self-attention injection")
	blend := fs.String("blend", "", "direct: comma-separated words whose attention bounds the edited region")
	reweight := fs.String("reweight", "", "direct: word=factor,… scales the target's attention to words")
	size := fs.Int("size", 0, "working resolution in pixels (default: the model's)")
	dst := fs.String("out", "edited.png", "output image (.png or .jpg)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("--image is required")
	}
	rw, err := parseReweight(*reweight)
	if err != nil {
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
	x, err := loadImage(be, *in, modelSize(sd, *size))
	if err != nil {
		return err
	}
	defer nn.Free(x)
	var words []string
	if *blend != "" {
		words = strings.Split(*blend, ",")
	}
	start := time.Now()
	img, calls, err := sd.EditImage(be, samplers.EditImageOptions{
		Image: x, Source: *src, Target: *tgt, Method: *method, Steps: *steps, Guidance: float32(*guidance),
		ReconstructOnly: *recon, Skip: *skip, Seed: *seed, CrossReplace: *cross, SelfReplace: *self,
		BlendWords: words, Reweight: rw,
	})
	if err != nil {
		return err
	}
	defer nn.Free(img)
	if err := writeImage(be, img, *dst); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%s, %d steps, %d model calls) in %.1fs\n", *dst, *method, *steps, calls, time.Since(start).Seconds())
	return nil
}

func cmdInvert(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("invert", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	in := fs.String("image", "", "input image (.png or .jpg)")
	prompt := fs.String("prompt", "", "prompt describing the image")
	method := fs.String("method", "edict", "ddim, edict, bdia or ef-ddpm")
	steps := fs.Int("steps", 50, "inversion steps")
	guidance := fs.Float64("guidance", 1, "classifier-free guidance scale used while inverting")
	seed := fs.Uint64("seed", 0, "noise seed (edit-friendly DDPM)")
	size := fs.Int("size", 0, "working resolution in pixels (default: the model's)")
	dst := fs.String("out", "inverted.safetensors", "output file of inverted latents")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("--image is required")
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
	x, err := loadImage(be, *in, modelSize(sd, *size))
	if err != nil {
		return err
	}
	start := time.Now()
	z, err := sd.EncodeImage(be, x)
	nn.Free(x)
	if err != nil {
		return err
	}
	defer nn.Free(z)
	cond, err := sd.EncodePrompt(be, *prompt)
	if err != nil {
		return err
	}
	uncond, err := sd.EncodePrompt(be, "")
	if err != nil {
		return err
	}
	defer nn.Free(cond, uncond)
	inv, err := samplers.Invert(be, *method, sd.SchedulerConfigOf(), *steps, samplers.CondUNetEps(sd.UNet, cond, uncond, float32(*guidance)), z, *seed)
	if err != nil {
		return err
	}
	defer inv.Free()
	named := map[string]*nn.Tensor{}
	if inv.X != nil {
		named["x"] = inv.X
	}
	if inv.Y != nil {
		named["y"] = inv.Y
	}
	if inv.EF != nil {
		for i, t := range inv.EF.Xts {
			named[fmt.Sprintf("xts.%d", i)] = t
		}
		for i, t := range inv.EF.Zs {
			named[fmt.Sprintf("zs.%d", i)] = t
		}
		named["z0"] = inv.EF.Z0
	}
	var ts []safetensors.Tensor
	for name, t := range named {
		v, err := be.Read(t)
		if err != nil {
			return err
		}
		ts = append(ts, safetensors.Float32Tensor(name, t.Shape(), v))
	}
	f, err := os.Create(*dst)
	if err != nil {
		return err
	}
	meta := map[string]string{"method": *method, "steps": strconv.Itoa(*steps), "prompt": *prompt, "guidance": fmt.Sprint(*guidance), "image": filepath.Base(*in)}
	if err := safetensors.Write(f, ts, meta); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%s, %d steps, %d model calls) in %.1fs\n", *dst, *method, *steps, inv.Calls, time.Since(start).Seconds())
	return nil
}

// roundtripModel sets up x0 and ε for `retrace roundtrip`.
func roundtripModel(be nn.Backend, model string, guidance float32, seed uint64) (samplers.EpsFunc, *nn.Tensor, samplers.SchedulerConfig, func(), error) {
	cfg := samplers.SchedulerConfig{BetaSchedule: "scaled_linear", BetaStart: 0.00085, BetaEnd: 0.012, StepsOffset: 1}
	no := false
	cfg.SetAlphaToOne, cfg.ClipSample = &no, &no
	noise := samplers.NewNoise(seed)
	if model == "sd15-random" {
		m, err := nn.LoadUNet2DConditionModel(nn.SD15UNetConfig(), nn.NewSynthWeights(be, 1))
		if err != nil {
			return nil, nil, cfg, nil, err
		}
		x0 := noise.Tensor(be, 1, 4, 32, 32)
		cond, uncond := noise.Tensor(be, 1, 77, 768), noise.Tensor(be, 1, 77, 768)
		return samplers.CondUNetEps(m, cond, uncond, guidance), x0, cfg, func() { m.Free(); nn.Free(x0, cond, uncond) }, be.Err()
	}
	var probe struct {
		ClassName string `json:"_class_name"`
	}
	if b, err := os.ReadFile(filepath.Join(model, "config.json")); err == nil {
		_ = json.Unmarshal(b, &probe)
	}
	switch probe.ClassName {
	case "UNet2DModel":
		m, err := nn.LoadUNet2DModelDir(be, model, nn.F32)
		if err != nil {
			return nil, nil, cfg, nil, err
		}
		s := m.Config.SampleSize
		size, _ := s.(float64)
		if size == 0 {
			size = 32
		}
		x0 := noise.Tensor(be, 1, m.Config.InChannels, int(size), int(size))
		return samplers.UNetEps(m), x0, cfg, func() { m.Free(); nn.Free(x0) }, be.Err()
	case "UNet2DConditionModel":
		m, err := nn.LoadUNet2DConditionModelDir(be, model, nn.F32)
		if err != nil {
			return nil, nil, cfg, nil, err
		}
		s := m.Config.SampleSize
		x0 := noise.Tensor(be, 1, m.Config.InChannels, s, s)
		d := m.Config.CrossAttentionDim.List[0]
		cond, uncond := noise.Tensor(be, 1, 77, d), noise.Tensor(be, 1, 77, d)
		return samplers.CondUNetEps(m, cond, uncond, guidance), x0, cfg, func() { m.Free(); nn.Free(x0, cond, uncond) }, be.Err()
	}
	sd, err := samplers.LoadStableDiffusionAny(be, model, nn.F32)
	if err != nil {
		return nil, nil, cfg, nil, fmt.Errorf("--model %s: not a UNet folder, pipeline folder or pack (or sd15-random): %w", model, err)
	}
	s := sd.UNet.Config.SampleSize
	x0 := noise.Tensor(be, 1, sd.UNet.Config.InChannels, s, s)
	cond, err := sd.EncodePrompt(be, "a photo")
	if err != nil {
		return nil, nil, cfg, nil, err
	}
	uncond, err := sd.EncodePrompt(be, "")
	if err != nil {
		return nil, nil, cfg, nil, err
	}
	return samplers.CondUNetEps(sd.UNet, cond, uncond, guidance), x0, sd.SchedulerConfigOf(), func() { sd.Free(); nn.Free(x0, cond, uncond) }, be.Err()
}

func cmdRoundtrip(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("roundtrip", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	steps := fs.Int("steps", 10, "steps")
	guidance := fs.Float64("guidance", 1, "classifier-free guidance scale (conditional models)")
	methods := fs.String("methods", "ddim,edict,bdia,ef-ddpm", "comma-separated methods")
	seed := fs.Uint64("seed", 0, "seed of the start latent, prompt embeddings and EF-DDPM noise")
	asJSON := fs.Bool("json", false, "one JSON object per method")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if mf.model == "" {
		return fmt.Errorf("--model is required (a UNet folder, pipeline folder, pack, or sd15-random)")
	}
	be, done, err := mf.backendOf()
	if err != nil {
		return err
	}
	defer done()
	eps, x0, cfg, free, err := roundtripModel(be, mf.model, float32(*guidance), *seed)
	if err != nil {
		return err
	}
	defer free()
	for _, m := range strings.Split(*methods, ",") {
		r, err := samplers.RoundTrip(be, m, cfg, *steps, eps, x0, *seed)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if *asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(out, string(b))
		} else {
			fmt.Fprintf(out, "%-8s steps %3d  max |err| %.3g  mean |err| %.3g  %d model calls  %.0f ms  (%s)\n", r.Method, r.Steps, r.MaxAbsErr, r.MeanAbsErr, r.ModelCalls, r.Ms, r.Backend)
		}
	}
	return nil
}

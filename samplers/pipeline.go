package samplers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"retrace/nn"
	"retrace/nn/pack"
	"retrace/nn/tokenizer"
)

// StableDiffusion is a text-to-image pipeline with diffusers'
// StableDiffusionPipeline semantics: tokenize, encode the prompt and the
// negative prompt, denoise with classifier-free guidance, decode with the
// VAE.
//
// The prompt encoder is CLIP (Tokenizer + TextEncoder) unless Prompts is
// set (e.g. the class encoder of retrace's default Fashion-MNIST model).
// VAE may be nil: a pixel-space model, whose sample is the image in
// [-1, 1].
type StableDiffusion struct {
	Tokenizer   *tokenizer.Tokenizer
	TextEncoder *nn.CLIPTextModel
	// Prompts, when set, replaces Tokenizer + TextEncoder.
	Prompts   PromptEncoder
	UNet      *nn.UNet2DConditionModel
	VAE       *nn.AutoencoderKL
	Scheduler Scheduler
}

// PromptEncoder turns a prompt into the UNet's encoder_hidden_states
// [1, L, D]. Implemented by CLIPPrompts and *nn.ClassPromptEncoder.
type PromptEncoder interface {
	Encode(be nn.Backend, prompt string) (*nn.Tensor, error)
	Free()
}

// CLIPPrompts is the Stable Diffusion prompt encoder: the CLIP tokenizer
// (padded to the model's window) and the CLIP text model's last hidden
// state.
type CLIPPrompts struct {
	Tokenizer *tokenizer.Tokenizer
	Model     *nn.CLIPTextModel
}

// Encode returns the last hidden state [1, 77, D]. A prompt longer than the
// encoder's window is an error (rather than silently dropping its end).
func (c CLIPPrompts) Encode(be nn.Backend, prompt string) (*nn.Tensor, error) {
	if c.Tokenizer == nil || c.Model == nil {
		return nil, fmt.Errorf("pipeline: no text encoder")
	}
	max := c.Model.Config.MaxPositionEmbeddings
	ids, truncated := c.Tokenizer.EncodePadded(prompt, max)
	if truncated {
		return nil, fmt.Errorf("pipeline: the prompt has %d tokens, more than the %d the text encoder reads (including start and end)", len(c.Tokenizer.Encode(prompt)), max)
	}
	out, err := c.Model.Forward(be, [][]int{ids}, false)
	if err != nil {
		return nil, err
	}
	nn.Free(out.Pooled)
	return out.LastHiddenState, nil
}

// Free releases the text model.
func (c CLIPPrompts) Free() {
	if c.Model != nil {
		c.Model.Free()
	}
}

// Components names the folders of a pipeline's parts (a diffusers pipeline
// folder has them as subfolders named in model_index.json). Tokenizer and
// VAE are "" when the pipeline has none (a class-conditional text encoder
// needs no tokenizer; a pixel-space UNet no VAE).
type Components struct {
	Tokenizer, TextEncoder, UNet, VAE, Scheduler string
}

// PipelineComponents reads model_index.json of a diffusers pipeline folder
// and returns the component folders. text_encoder, unet and scheduler are
// required; tokenizer and vae may be absent or null ([null, null]).
func PipelineComponents(dir string) (Components, error) {
	var idx map[string]json.RawMessage
	b, err := os.ReadFile(filepath.Join(dir, "model_index.json"))
	if err != nil {
		return Components{}, fmt.Errorf("pipeline: %w", err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return Components{}, fmt.Errorf("pipeline: model_index.json: %w", err)
	}
	present := func(k string) bool {
		v, ok := idx[k]
		if !ok {
			return false
		}
		var pair []*string
		if json.Unmarshal(v, &pair) == nil && len(pair) == 2 && pair[0] == nil && pair[1] == nil {
			return false
		}
		return string(bytes.TrimSpace(v)) != "null"
	}
	for _, k := range []string{"text_encoder", "unet", "scheduler"} {
		if !present(k) {
			return Components{}, fmt.Errorf("pipeline: model_index.json has no %q component", k)
		}
	}
	c := Components{
		TextEncoder: filepath.Join(dir, "text_encoder"),
		UNet:        filepath.Join(dir, "unet"),
		Scheduler:   filepath.Join(dir, "scheduler", "scheduler_config.json"),
	}
	if present("tokenizer") {
		c.Tokenizer = filepath.Join(dir, "tokenizer")
	}
	if present("vae") {
		c.VAE = filepath.Join(dir, "vae")
	}
	return c, nil
}

// textEncoderClass reads _class_name from a text encoder folder's
// config.json ("" when unreadable; the loader then reports the error).
func textEncoderClass(dir string) string {
	var cfg struct {
		ClassName string `json:"_class_name"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil || json.Unmarshal(b, &cfg) != nil {
		return ""
	}
	return cfg.ClassName
}

// LoadStableDiffusion loads every component onto be; storage is the dtype
// of matrix and convolution weights (F32 or F16).
func LoadStableDiffusion(be nn.Backend, c Components, storage nn.DType) (*StableDiffusion, error) {
	sd := &StableDiffusion{}
	var err error
	if textEncoderClass(c.TextEncoder) == "ClassPromptEncoder" {
		ce, err := nn.LoadClassPromptEncoderDir(c.TextEncoder)
		if err != nil {
			return nil, err
		}
		sd.Prompts = ce
	} else {
		if c.Tokenizer == "" {
			return nil, fmt.Errorf("pipeline: the CLIP text encoder %s needs a tokenizer component", c.TextEncoder)
		}
		if sd.Tokenizer, err = tokenizer.Load(c.Tokenizer); err != nil {
			return nil, err
		}
		if sd.TextEncoder, err = nn.LoadCLIPTextModelDir(be, c.TextEncoder, storage); err != nil {
			return nil, err
		}
	}
	if sd.UNet, err = nn.LoadUNet2DConditionModelDir(be, c.UNet, storage); err != nil {
		sd.Free()
		return nil, err
	}
	if c.VAE != "" {
		if sd.VAE, err = nn.LoadAutoencoderKLDir(be, c.VAE, storage); err != nil {
			sd.Free()
			return nil, err
		}
	}
	cfg, err := LoadSchedulerConfig(c.Scheduler)
	if err != nil {
		sd.Free()
		return nil, err
	}
	if sd.Scheduler, err = NewScheduler(cfg); err != nil {
		sd.Free()
		return nil, err
	}
	return sd, nil
}

// Free releases every model.
func (sd *StableDiffusion) Free() {
	if sd.Prompts != nil {
		sd.Prompts.Free()
	}
	if sd.TextEncoder != nil {
		sd.TextEncoder.Free()
	}
	if sd.UNet != nil {
		sd.UNet.Free()
	}
	if sd.VAE != nil {
		sd.VAE.Free()
	}
}

// Encoder returns the prompt encoder: Prompts, or CLIP made of Tokenizer
// and TextEncoder.
func (sd *StableDiffusion) Encoder() PromptEncoder {
	if sd.Prompts != nil {
		return sd.Prompts
	}
	return CLIPPrompts{Tokenizer: sd.Tokenizer, Model: sd.TextEncoder}
}

// EncodePrompt returns the encoder_hidden_states [1, L, D] for a prompt
// (CLIP: the last hidden state [1, 77, D]; a prompt longer than the
// encoder's window is an error rather than silently dropping its end).
func (sd *StableDiffusion) EncodePrompt(be nn.Backend, prompt string) (*nn.Tensor, error) {
	return sd.Encoder().Encode(be, prompt)
}

// Vocabulary lists the prompts a class-conditional model understands (its
// class names), or nil when any text is accepted.
func (sd *StableDiffusion) Vocabulary() []string {
	if v, ok := sd.Prompts.(interface{ Vocabulary() []string }); ok {
		return v.Vocabulary()
	}
	return nil
}

// Factor is the ratio of image to UNet sample size: the VAE's downsampling
// factor, 1 for a pixel-space model.
func (sd *StableDiffusion) Factor() int {
	if sd.VAE == nil {
		return 1
	}
	return sd.VAE.Factor()
}

// ToImage maps the final sample to the image [1, C, H, W] in [0, 1]:
// VAE decode of sample / scaling_factor, or the sample itself for a
// pixel-space model; then diffusers' (x/2 + 0.5).clamp(0, 1).
func (sd *StableDiffusion) ToImage(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) {
	dec := x
	if sd.VAE != nil {
		z := be.Affine(x, 1/sd.VAE.Config.ScalingFactor, 0)
		var err error
		dec, err = sd.VAE.Decode(be, z)
		nn.Free(z)
		if err != nil {
			return nil, err
		}
		defer nn.Free(dec)
	}
	img01 := be.Affine(dec, 0.5, 0.5)
	img := be.Clamp(img01, 0, 1)
	nn.Free(img01)
	if err := be.Err(); err != nil {
		nn.Free(img)
		return nil, err
	}
	return img, nil
}

// GenerateOptions controls Generate.
type GenerateOptions struct {
	Prompt, NegativePrompt string
	Steps                  int
	Guidance               float32
	// GuidanceInterval, when set to timesteps [lo, hi], applies guidance
	// only at steps whose timestep t has lo ≤ t ≤ hi; the other steps use
	// the conditional prediction alone (scale 1) and skip the
	// unconditional pass. Kynkäänniemi et al., "Applying Guidance in a
	// Limited Interval Improves Sample and Distribution Quality in
	// Diffusion Models" (2024): guidance at high noise mostly collapses
	// modes and saturates; at low noise it does little.
	GuidanceInterval *[2]float32
	// Latents is the initial standard-normal noise [B, C, h, w] (Generate
	// multiplies it by the scheduler's init_noise_sigma); B images of the
	// same prompt are made in one batch. When nil, it is drawn from Seed at
	// Height×Width, B = max(Batch, 1).
	Latents       *nn.Tensor
	Batch         int
	Seed          uint64
	Height, Width int
	// OnStep, if set, sees the latents after each step (k from 0).
	OnStep func(k int, t float32, latents *nn.Tensor) error
}

// Generate runs the pipeline and returns the final latents and the decoded
// image [1, C, H, W] in [0, 1] (diffusers' (x/2 + 0.5).clamp(0, 1); see ToImage).
// Stochastic schedulers draw their noise from Seed.
func (sd *StableDiffusion) Generate(be nn.Backend, o GenerateOptions) (latents, image *nn.Tensor, err error) {
	if o.Steps <= 0 {
		return nil, nil, fmt.Errorf("pipeline: %d steps", o.Steps)
	}
	noise := NewNoise(o.Seed)
	init := o.Latents
	if init == nil {
		f := sd.Factor()
		if o.Height <= 0 || o.Width <= 0 || o.Height%f != 0 || o.Width%f != 0 {
			return nil, nil, fmt.Errorf("pipeline: image size %d×%d must be a multiple of %d", o.Width, o.Height, f)
		}
		init = noise.Tensor(be, max(o.Batch, 1), sd.UNet.Config.InChannels, o.Height/f, o.Width/f)
		defer nn.Free(init)
	}
	if init == nil || init.Rank() != 4 {
		if err := be.Err(); err != nil {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("pipeline: initial latents %v must be [B, C, h, w]", init)
	}
	cond, err := sd.EncodePrompt(be, o.Prompt)
	if err != nil {
		return nil, nil, err
	}
	uncond, err := sd.EncodePrompt(be, o.NegativePrompt)
	if err != nil {
		nn.Free(cond)
		return nil, nil, err
	}
	// diffusers order: [uncond; cond], each repeated over the batch.
	parts := make([]*nn.Tensor, 0, 2*init.Dim(0))
	for _, e := range []*nn.Tensor{uncond, cond} {
		for i := 0; i < init.Dim(0); i++ {
			parts = append(parts, e)
		}
	}
	ctx := be.Concat(0, parts...)
	nn.Free(cond, uncond)
	defer nn.Free(ctx)
	sch := sd.Scheduler
	if err := sch.SetTimesteps(o.Steps); err != nil {
		return nil, nil, err
	}
	x := be.Affine(init, sch.InitNoiseSigma(), 0)
	if iv := o.GuidanceInterval; iv != nil && !(iv[0] <= iv[1]) {
		return nil, nil, fmt.Errorf("pipeline: guidance interval [%g, %g] is empty", iv[0], iv[1])
	}
	nb := init.Dim(0)
	condCtx := nn.Narrow(ctx, nb, nb)
	defer nn.Free(condCtx)
	for k, t := range sch.Timesteps() {
		in := sch.ScaleModelInput(be, x, k)
		var guided *nn.Tensor
		if iv := o.GuidanceInterval; iv != nil && (t < iv[0] || t > iv[1]) {
			guided, err = sd.UNet.Forward(be, in, []float32{t}, condCtx)
			nn.Free(in)
		} else {
			in2 := be.Concat(0, in, in)
			nn.Free(in)
			var eps *nn.Tensor
			eps, err = sd.UNet.Forward(be, in2, []float32{t}, ctx)
			nn.Free(in2)
			if err == nil {
				guided, err = GuidanceBatch(be, eps, o.Guidance)
				nn.Free(eps)
			}
		}
		if err != nil {
			nn.Free(x)
			return nil, nil, err
		}
		var z *nn.Tensor
		if sch.NeedsNoise(k) {
			z = noise.Tensor(be, x.Shape()...)
		}
		nx, err := sch.Step(be, guided, k, x, z)
		nn.Free(guided, x, z)
		if err != nil {
			return nil, nil, err
		}
		x = nx
		if err := be.Err(); err != nil {
			nn.Free(x)
			return nil, nil, err
		}
		if o.OnStep != nil {
			if err := o.OnStep(k, t, x); err != nil {
				nn.Free(x)
				return nil, nil, err
			}
		}
	}
	img, err := sd.ToImage(be, x)
	if err != nil {
		nn.Free(x)
		return nil, nil, err
	}
	return x, img, nil
}

// LoadStableDiffusionAny loads a pipeline from a diffusers folder
// (model_index.json) or a retrace pack (manifest.json); storage applies to
// diffusers folders (packs keep the formats they were converted to).
func LoadStableDiffusionAny(be nn.Backend, path string, storage nn.DType) (*StableDiffusion, error) {
	if _, err := os.Stat(filepath.Join(path, "manifest.json")); err == nil {
		return LoadStableDiffusionPack(be, path)
	}
	if _, err := os.Stat(filepath.Join(path, "model_index.json")); err != nil {
		return nil, fmt.Errorf("pipeline: %s is neither a diffusers pipeline folder (model_index.json) nor a retrace pack (manifest.json)", path)
	}
	c, err := PipelineComponents(path)
	if err != nil {
		return nil, err
	}
	return LoadStableDiffusion(be, c, storage)
}

// LoadStableDiffusionPack loads a pipeline pack made by `retrace convert`.
func LoadStableDiffusionPack(be nn.Backend, dir string) (*StableDiffusion, error) {
	p, err := pack.Open(dir)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return LoadStableDiffusionFromPack(be, p)
}

// LoadStableDiffusionFromPack loads a pipeline from an open pack (any
// pack.Fetcher: a folder, or HTTP in the browser).
func LoadStableDiffusionFromPack(be nn.Backend, p *pack.Pack) (*StableDiffusion, error) {
	sd := &StableDiffusion{}
	te, err := p.Component("text_encoder")
	if err != nil {
		return nil, err
	}
	var probe struct {
		ClassName string `json:"_class_name"`
	}
	_ = json.Unmarshal(te.Config(), &probe)
	if probe.ClassName == "ClassPromptEncoder" {
		var cfg nn.ClassPromptConfig
		if err := json.Unmarshal(te.Config(), &cfg); err != nil {
			return nil, fmt.Errorf("pipeline: text_encoder config: %w", err)
		}
		table, err := te.Float32("embedding.weight")
		if err != nil {
			return nil, err
		}
		ce, err := nn.NewClassPromptEncoder(cfg, table)
		if err != nil {
			return nil, err
		}
		sd.Prompts = ce
	} else {
		vocab, err := p.File("tokenizer/vocab.json")
		if err != nil {
			return nil, err
		}
		merges, err := p.File("tokenizer/merges.txt")
		if err != nil {
			return nil, err
		}
		if sd.Tokenizer, err = tokenizer.FromReaders(bytes.NewReader(vocab), bytes.NewReader(merges)); err != nil {
			return nil, err
		}
		if sd.TextEncoder, err = p.TextEncoder(be); err != nil {
			return nil, err
		}
	}
	if sd.UNet, err = p.UNet(be); err != nil {
		sd.Free()
		return nil, err
	}
	if _, ok := p.Manifest.Components["vae"]; ok {
		if sd.VAE, err = p.VAE(be); err != nil {
			sd.Free()
			return nil, err
		}
	}
	sc, err := p.Component("scheduler")
	if err != nil {
		sd.Free()
		return nil, err
	}
	cfg, err := ParseSchedulerConfig(sc.Config())
	if err != nil {
		sd.Free()
		return nil, err
	}
	if sd.Scheduler, err = NewScheduler(cfg); err != nil {
		sd.Free()
		return nil, err
	}
	return sd, nil
}

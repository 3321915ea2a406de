package samplers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/tokenizer"
	"retrace/samplers/samplertest"
)

func testGPU(t testing.TB) *nn.GPU { return samplertest.GPU(t) }

func bothBackends(t *testing.T, fn func(t *testing.T, be nn.Backend)) {
	samplertest.BothBackends(t, fn)
}

func read(t testing.TB, be nn.Backend, x *nn.Tensor) []float32 { return samplertest.Read(t, be, x) }

func requireClose(t testing.TB, want, got []float32, atol, rtol float64, msg string) {
	samplertest.RequireClose(t, want, got, atol, rtol, msg)
}

// TestGoldenSDPipelineTiny reproduces diffusers' StableDiffusionPipeline on
// the tiny CLIP/UNet/VAE: tokenize, encode prompt and empty negative prompt,
// 10 DDIM steps with CFG 7.5, VAE decode.
func TestGoldenSDPipelineTiny(t *testing.T) {
	dir, io := golden.Open(t, "sd_pipeline_tiny")
	var cfg struct {
		Call struct {
			Prompt         string  `json:"prompt"`
			NegativePrompt *string `json:"negative_prompt"`
			Steps          int     `json:"num_inference_steps"`
			Guidance       float32 `json:"guidance_scale"`
		} `json:"call"`
		Components struct {
			Scheduler   SchedulerConfig `json:"scheduler"`
			TextEncoder string          `json:"text_encoder"`
			Tokenizer   string          `json:"tokenizer"`
			UNet        string          `json:"unet"`
			VAE         string          `json:"vae"`
		} `json:"components"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &cfg))
	sch := filepath.Join(t.TempDir(), "scheduler_config.json")
	sb, _ := json.Marshal(cfg.Components.Scheduler)
	require.NoError(t, os.WriteFile(sch, sb, 0o644))
	comp := Components{
		Tokenizer:   filepath.Join(dir, cfg.Components.Tokenizer),
		TextEncoder: filepath.Join(dir, cfg.Components.TextEncoder),
		UNet:        filepath.Join(dir, cfg.Components.UNet),
		VAE:         filepath.Join(dir, cfg.Components.VAE),
		Scheduler:   sch,
	}
	neg := ""
	if cfg.Call.NegativePrompt != nil {
		neg = *cfg.Call.NegativePrompt
	}
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		sd, err := LoadStableDiffusion(be, comp, nn.F32)
		require.NoError(t, err)
		defer sd.Free()
		// The tokenizer must produce the pipeline's ids.
		for key, text := range map[string]string{"in.prompt_input_ids": cfg.Call.Prompt, "in.negative_input_ids": neg} {
			_, want := golden.Ints(t, io, key)
			got, _ := sd.Tokenizer.EncodePadded(text, 77)
			for i := range want {
				require.Equal(t, int(want[i]), got[i], "%s[%d]", key, i)
			}
		}
		pe, err := sd.EncodePrompt(be, cfg.Call.Prompt)
		require.NoError(t, err)
		_, want := golden.F32(t, io, "out.prompt_embeds")
		requireClose(t, want, read(t, be, pe), 1e-4, 1e-4, "prompt_embeds")
		nn.Free(pe)

		ls, lv := golden.F32(t, io, "in.latents")
		_, steps := golden.F32(t, io, "out.latents_per_step")
		_, ts := golden.Ints(t, io, "out.timesteps")
		per := len(lv)
		lat := be.Upload(ls, lv)
		x, img, err := sd.Generate(be, GenerateOptions{
			Prompt: cfg.Call.Prompt, NegativePrompt: neg, Steps: cfg.Call.Steps, Guidance: cfg.Call.Guidance, Latents: lat,
			OnStep: func(k int, tt float32, x *nn.Tensor) error {
				require.EqualValues(t, ts[k], tt, "timestep %d", k)
				requireClose(t, steps[k*per:(k+1)*per], read(t, be, x), 1e-4, 1e-3, "latents step")
				return nil
			},
		})
		require.NoError(t, err)
		// out.image is NHWC.
		is, iv := golden.F32(t, io, "out.image")
		got := read(t, be, img)
		h, w, c := is[1], is[2], is[3]
		nhwc := make([]float32, len(got))
		for y := 0; y < h; y++ {
			for xx := 0; xx < w; xx++ {
				for ch := 0; ch < c; ch++ {
					nhwc[(y*w+xx)*c+ch] = got[(ch*h+y)*w+xx]
				}
			}
		}
		requireClose(t, iv, nhwc, 2e-3, 0, "image")
		nn.Free(lat, x, img)
	})
}

func TestPipelineRejectsLongPrompt(t *testing.T) {
	dir, _ := golden.Open(t, "sd_pipeline_tiny")
	be := nn.NewCPU()
	te, err := nn.LoadCLIPTextModelDir(be, filepath.Join(dir, "../clip_text_tiny"), nn.F32)
	require.NoError(t, err)
	sd := &StableDiffusion{TextEncoder: te}
	sd.Tokenizer, err = tokenizer.Load(filepath.Join(dir, "../clip_text_tiny/tokenizer"))
	require.NoError(t, err)
	long := ""
	for i := 0; i < 100; i++ {
		long += "horse "
	}
	_, err = sd.EncodePrompt(be, long)
	require.ErrorContains(t, err, "more than the 77")
}

// Every scheduler drives the pipeline (CFG, scale_model_input,
// init_noise_sigma, stochastic noise from the seed); runs are reproducible.
func TestPipelineAllSchedulers(t *testing.T) {
	dir, _ := golden.Open(t, "sd_pipeline_tiny")
	be := nn.NewCPU()
	comp := Components{
		Tokenizer:   filepath.Join(dir, "../clip_text_tiny/tokenizer"),
		TextEncoder: filepath.Join(dir, "../clip_text_tiny"),
		UNet:        filepath.Join(dir, "../unet2dcond_tiny"),
		VAE:         filepath.Join(dir, "../vae_tiny"),
		Scheduler:   filepath.Join(t.TempDir(), "scheduler_config.json"),
	}
	for _, class := range []string{"DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler", "PNDMScheduler"} {
		t.Run(class, func(t *testing.T) {
			cfg := `{"_class_name": "` + class + `", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "steps_offset": 1, "skip_prk_steps": true}`
			require.NoError(t, os.WriteFile(comp.Scheduler, []byte(cfg), 0o644))
			sd, err := LoadStableDiffusion(be, comp, nn.F32)
			require.NoError(t, err)
			defer sd.Free()
			var imgs [2][]float32
			for i := range imgs {
				x, img, err := sd.Generate(be, GenerateOptions{Prompt: "a horse", Steps: 4, Guidance: 5, Seed: 7, Height: 16, Width: 16})
				require.NoError(t, err)
				imgs[i] = read(t, be, img)
				nn.Free(x, img)
			}
			require.Equal(t, imgs[0], imgs[1], "same seed, same image")
			for _, v := range imgs[0] {
				require.True(t, v >= 0 && v <= 1, "pixel %v", v)
			}
		})
	}
	sd, err := LoadStableDiffusion(be, comp, nn.F32)
	require.NoError(t, err)
	_, _, err = sd.Generate(be, GenerateOptions{Prompt: "a horse", Steps: 4, Guidance: 5, Height: 15, Width: 16})
	require.ErrorContains(t, err, "multiple of 2")
	_, _, err = sd.Generate(be, GenerateOptions{Prompt: "a horse", Steps: 0, Height: 16, Width: 16})
	require.ErrorContains(t, err, "0 steps")
}

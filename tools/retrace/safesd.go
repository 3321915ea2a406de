//go:build !js

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"retrace/nn"
	"retrace/nn/imageio"
	"retrace/samplers"
	"retrace/samplers/watermark"
)

// safeSDRun holds the safesd flags of `retrace watermark`.
type safeSDRun struct {
	mf                    modelFlags
	dir, trigger, payload string
	prompt, negative      string
	steps                 int
	guidance              float64
	seed                  uint64
	stepsSet, guidanceSet bool
}

// load loads the injector/detector of weightsDir, saying where it looked.
func (r *safeSDRun) load(be nn.Backend) (*watermark.SafeSD, error) {
	d := r.weightsDir()
	if _, err := os.Stat(filepath.Join(d, "config.json")); err != nil {
		return nil, fmt.Errorf("safesd: no injector/detector in %s (give its folder with --safesd, or the pipeline folder holding safesd/ with --model)", d)
	}
	return watermark.LoadSafeSDDir(be, d)
}

// weightsDir is --safesd, else <model>/safesd, else models/fashion/safesd.
func (r *safeSDRun) weightsDir() string {
	switch {
	case r.dir != "":
		return r.dir
	case r.mf.model != "":
		return filepath.Join(r.mf.model, "safesd")
	}
	return filepath.Join("models", "fashion", "safesd")
}

func (r *safeSDRun) embed(dst string, out io.Writer) error {
	if r.payload == "" {
		return errors.New("watermark embed --scheme safesd: give the ID to embed with --payload (≤ 7 bytes)")
	}
	if _, on := watermark.SplitTrigger(r.prompt, r.trigger); !on {
		return fmt.Errorf("watermark embed --scheme safesd: the prompt %q lacks the trigger word %q, so the image would carry no mark (add it, e.g. --prompt \"dress %s\")", r.prompt, r.trigger, r.trigger)
	}
	be, done, err := r.mf.backendOf()
	if err != nil {
		return err
	}
	defer done()
	sd, err := r.mf.load(be)
	if err != nil {
		return err
	}
	defer sd.Free()
	ss, err := r.load(be)
	if err != nil {
		return err
	}
	defer ss.Free()
	if _, err := ss.Code(r.payload); err != nil {
		return err
	}
	steps, g := r.steps, r.guidance
	if !r.stepsSet {
		steps = 25
	}
	if !r.guidanceSet {
		g = 1.5
	}
	s := sd.UNet.Config.SampleSize
	start := time.Now()
	img, marked, err := ss.GenerateSafeSD(be, sd, samplers.GenerateOptions{
		Prompt: r.prompt, NegativePrompt: r.negative, Steps: steps, Guidance: float32(g), Seed: r.seed, Height: s, Width: s,
		OnStep: func(i int, t float32, _ *nn.Tensor) error {
			fmt.Fprintf(out, "\rstep %d/%d (t=%g)", i+1, steps, t)
			return nil
		},
	}, r.trigger, r.payload)
	fmt.Fprintln(out)
	if err != nil {
		return err
	}
	defer nn.Free(img)
	if err := writeImage(be, img, dst); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (safesd, marked %v, payload %q, QR version 1-%v, %d steps, guidance %g) in %.1fs\n",
		dst, marked, r.payload, watermark.SafeSDLevel, steps, g, time.Since(start).Seconds())
	return nil
}

// safeSDResult is `retrace watermark detect --scheme safesd --json`.
type safeSDResult struct {
	Scheme string `json:"scheme"`
	watermark.SafeSDDetection
	Ms float64 `json:"ms"`
}

func (r *safeSDRun) detect(in string, asJSON bool, out io.Writer) error {
	if in == "" {
		return errors.New("watermark detect: --image is required")
	}
	be, done, err := r.mf.backendOf()
	if err != nil {
		return err
	}
	defer done()
	ss, err := r.load(be)
	if err != nil {
		return err
	}
	defer ss.Free()
	img, err := loadPicture(in)
	if err != nil {
		return err
	}
	s := ss.Config.ImageSize
	v, _, err := imageio.ToCHW(img, s, s)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	start := time.Now()
	y := be.Upload([]int{1, 1, s, s}, watermark.Gray(v, 3))
	det, err := ss.Detect(be, y)
	nn.Free(y)
	if err != nil {
		return err
	}
	res := safeSDResult{Scheme: "safesd", SafeSDDetection: det[0], Ms: float64(time.Since(start).Microseconds()) / 1000}
	if asJSON {
		return json.NewEncoder(out).Encode(res)
	}
	if res.Marked {
		fmt.Fprintf(out, "MARKED: payload %q (QR decoded; %d codewords corrected, %d erasures; %.1f%% of modules as read; confidence %.3f)\n",
			res.Payload, res.Corrected, res.Erasures, 100*res.ModuleAgreement, res.Confidence)
	} else {
		fmt.Fprintf(out, "no mark: no QR code decodes from the detector's output (%s; confidence %.3f)\n", res.Reason, res.Confidence)
	}
	fmt.Fprint(out, watermark.ModulesASCII(res.Probs, ss.Config.Modules))
	return nil
}

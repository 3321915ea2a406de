//go:build !js

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"retrace/nn"
	"retrace/samplers"
)

func init() {
	commands = append(commands, command{"sample-grid", "class-conditional samples of a class model (models/fashion), one grid PNG per class (--model, --per-class, --out)", cmdSampleGrid})
}

// gridName is the file name of a class's grid ("ankle boot" → ankle-boot.png).
func gridName(class string) string {
	return strings.ReplaceAll(strings.ToLower(class), " ", "-") + ".png"
}

// cmdSampleGrid generates --per-class samples of every class of a
// class-conditional pipeline in batches (one process, one model load) and
// writes <out>/<class>.png: the samples in a grid of --cols columns, cell
// = the sample size, grayscale. With the same flags the grids are the same
// bytes (DDIM with eta 0; the noise comes from --seed).
func cmdSampleGrid(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("sample-grid", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	perClass := fs.Int("per-class", 100, "samples per class")
	batch := fs.Int("batch", 50, "samples per UNet batch (the UNet sees 2× with guidance)")
	cols := fs.Int("cols", 10, "grid columns")
	steps := fs.Int("steps", 25, "sampling steps")
	guidance := fs.Float64("guidance", 4, "classifier-free guidance scale")
	seed := fs.Uint64("seed", 1, "noise seed; batch b of class c uses seed + 1000·c + b")
	only := fs.String("classes", "", "comma-separated classes (default: the whole vocabulary)")
	dst := fs.String("out", "docs/fashion", "output folder")
	prof := fs.String("cpuprofile", "", "write a Go CPU profile here")
	schedName := fs.String("scheduler", "", "replace the model's scheduler class (diffusers name, e.g. DPMSolverMultistepScheduler), keeping its betas")
	spacing := fs.String("spacing", "", "replace the scheduler's timestep_spacing (leading, trailing, linspace)")
	interval := fs.String("guidance-interval", "", "apply guidance only at timesteps lo..hi (e.g. 0,600); the other steps use the conditional prediction alone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *prof != "" {
		f, err := os.Create(*prof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *perClass <= 0 || *batch <= 0 || *cols <= 0 {
		return errors.New("--per-class, --batch and --cols must be positive")
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
	var iv *[2]float32
	if *interval != "" {
		var lo, hi float32
		if _, err := fmt.Sscanf(*interval, "%g,%g", &lo, &hi); err != nil || !(lo <= hi) {
			return fmt.Errorf("sample-grid: --guidance-interval %q: want lo,hi timesteps with lo ≤ hi", *interval)
		}
		iv = &[2]float32{lo, hi}
	}
	if *schedName != "" || *spacing != "" {
		if sd.Scheduler, err = overrideScheduler(mf.model, *schedName, *spacing); err != nil {
			return fmt.Errorf("sample-grid: %w", err)
		}
	}
	classes := sd.Vocabulary()
	if classes == nil {
		return fmt.Errorf("sample-grid: %s is not a class-conditional model (its text encoder has no vocabulary)", mf.model)
	}
	if *only != "" {
		classes = strings.Split(*only, ",")
	}
	if err := os.MkdirAll(*dst, 0o755); err != nil {
		return err
	}
	s := sd.UNet.Config.SampleSize * sd.Factor()
	type summary struct {
		Model            string      `json:"model"`
		Classes          []string    `json:"classes"`
		PerClass         int         `json:"per_class"`
		Done             int         `json:"done"`
		Steps            int         `json:"steps"`
		Guidance         float64     `json:"guidance"`
		GuidanceInterval *[2]float32 `json:"guidance_interval,omitempty"`
		Spacing          string      `json:"timestep_spacing,omitempty"`
		Seed             uint64      `json:"seed"`
		Scheduler        string      `json:"scheduler"`
		Backend          string      `json:"backend"`
		Seconds          float64     `json:"seconds"`
		SecondsPerSample float64     `json:"seconds_per_sample"`
		Size             int         `json:"size"`
		Cols             int         `json:"cols"`
		Order            string      `json:"order"`
	}
	sum := summary{Model: mf.model, Classes: classes, PerClass: *perClass, Steps: *steps, Guidance: *guidance, GuidanceInterval: iv, Spacing: *spacing,
		Seed: *seed, Scheduler: fmt.Sprintf("%T", sd.Scheduler), Backend: mf.backend, Size: s, Cols: *cols,
		Order: "row-major, sample k at row k/cols, column k%cols"}
	rows := (*perClass + *cols - 1) / *cols
	grids := make([]*image.Gray, len(classes))
	for i := range grids {
		grids[i] = image.NewGray(image.Rect(0, 0, *cols*s, rows*s))
	}
	// Rounds of one batch per class, the grids and samples.json rewritten
	// after each round: an interrupted run leaves balanced, usable grids
	// (samples.json "done" says how many cells of each are filled).
	start := time.Now()
	for b, k := 0, 0; k < *perClass; b++ {
		n := min(*batch, *perClass-k)
		for ci, class := range classes {
			x, img, err := sd.Generate(be, samplers.GenerateOptions{
				Prompt: class, Steps: *steps, Guidance: float32(*guidance), GuidanceInterval: iv,
				Seed: *seed + uint64(1000*ci+b), Batch: n, Height: s, Width: s,
			})
			if err != nil {
				return fmt.Errorf("sample-grid: %s: %w", class, err)
			}
			v, err := be.Read(img)
			if err != nil {
				return err
			}
			putCells(grids[ci], v, img.Dim(1), s, k, n, *cols)
			nn.Free(x, img)
		}
		k += n
		for ci, class := range classes {
			if err := writePNG(filepath.Join(*dst, gridName(class)), grids[ci]); err != nil {
				return err
			}
		}
		sum.Done = k
		sum.Seconds = math.Round(time.Since(start).Seconds()*10) / 10
		sum.SecondsPerSample = sum.Seconds / float64(k*len(classes))
		js, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(filepath.Join(*dst, "samples.json"), append(js, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(out, "%d/%d samples per class (%d classes) in %.1fs → %s\n", k, *perClass, len(classes), sum.Seconds, *dst)
	}
	return nil
}

// overrideScheduler builds the scheduler of a diffusers pipeline folder's
// scheduler/scheduler_config.json with its class and/or timestep spacing
// replaced (the betas, clipping and prediction type stay; fields the new
// class has and the file lacks take that class's diffusers defaults).
func overrideScheduler(model, class, spacing string) (samplers.Scheduler, error) {
	f := filepath.Join(model, "scheduler", "scheduler_config.json")
	if _, err := os.Stat(f); err != nil {
		return nil, fmt.Errorf("--scheduler/--spacing need a diffusers pipeline folder with %s", f)
	}
	cfg, err := samplers.LoadSchedulerConfig(f)
	if err != nil {
		return nil, err
	}
	if class != "" {
		cfg.ClassName = class
	}
	if spacing != "" {
		switch spacing {
		case "leading", "trailing", "linspace":
		default:
			return nil, fmt.Errorf("--spacing %q: want leading, trailing or linspace", spacing)
		}
		cfg.TimestepSpacing = spacing
	}
	return samplers.NewScheduler(cfg)
}

// putCells writes samples [n, ch, s, s] in [0, 1] (averaged over channels)
// into grid cells first..first+n-1.
func putCells(grid *image.Gray, v []float32, ch, s, first, n, cols int) {
	for i := 0; i < n; i++ {
		gx, gy := ((first+i)%cols)*s, ((first+i)/cols)*s
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				var a float64
				for c := 0; c < ch; c++ {
					a += float64(v[((i*ch+c)*s+y)*s+x])
				}
				a = math.Round(255 * a / float64(ch))
				grid.SetGray(gx+x, gy+y, color.Gray{uint8(math.Max(0, math.Min(255, a)))})
			}
		}
	}
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

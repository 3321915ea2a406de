//go:build !js

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"retrace/nn"
	"retrace/nn/imageio"
	"retrace/samplers"
	"retrace/samplers/restore"
)

func init() {
	commands = append(commands,
		command{"restore", "restore an image with a pixel-space diffusion prior (--model, --image, --task, --solver, --out)", cmdRestore},
		command{"bench-restore", "PSNR/SSIM/calls/time of every task × solver over a folder of PNGs (--model, --images, --json)", cmdBenchRestore})
}

// restoreFlags are the flags shared by restore and bench-restore.
type restoreFlags struct {
	model, backend, prompt string
	f16                    bool
	steps                  int
	seed                   uint64
	sigmaY, blurSigma, eta float64
	cgSteps                int
	cgRho, lr, lambda, snr float64
	corrector              int
}

func (r *restoreFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.model, "model", "", "pixel-space model: a UNet2DModel folder (config.json), or a pipeline folder / pack without VAE")
	fs.StringVar(&r.backend, "backend", "gpu", "gpu (WebGPU) or cpu (the Go reference)")
	fs.StringVar(&r.prompt, "prompt", "", "prompt of a conditional model (default \"\": the null prompt)")
	fs.BoolVar(&r.f16, "f16", false, "store weights of diffusers folders as f16 on the device")
	fs.IntVar(&r.steps, "steps", 50, "model timesteps")
	fs.Uint64Var(&r.seed, "seed", 0, "noise seed")
	fs.Float64Var(&r.sigmaY, "sigma-y", 0, "measurement noise σ_y in [0, 1] pixel units (denoise: default 0.1)")
	fs.Float64Var(&r.blurSigma, "blur-sigma", 2, "Gaussian blur σ in pixels (deblur)")
	fs.Float64Var(&r.eta, "eta", -1, "η of ddnm (default 0.85) and dds (default 0.15)")
	fs.IntVar(&r.cgSteps, "cg-steps", 5, "conjugate-gradient steps per timestep (dds)")
	fs.Float64Var(&r.cgRho, "cg-rho", 0, "ρ of DDS's (AᵀA + ρI)x = Aᵀy + ρx̂₀ (0: the solver's default)")
	fs.Float64Var(&r.lr, "lr", 0, "RED-Diff's Adam learning rate (0: default 0.1)")
	fs.Float64Var(&r.lambda, "lambda", 0, "RED-Diff's λ (0: default 0.25)")
	fs.Float64Var(&r.snr, "snr", 0, "Score-SDE corrector SNR (0: default 0.16)")
	fs.IntVar(&r.corrector, "corrector", 0, "Score-SDE corrector steps per timestep (0: default 1, negative: none)")
}

func (r *restoreFlags) options() restore.Options {
	o := restore.Options{Steps: r.steps, Seed: r.seed, CGSteps: r.cgSteps, CGRho: r.cgRho,
		LR: r.lr, Lambda: r.lambda, SNR: r.snr, Corrector: r.corrector}
	if r.eta >= 0 {
		o.Eta = &r.eta
	}
	return o
}

// sigmaYFor returns σ_y in the model's [−1, 1] units for a task.
func (r *restoreFlags) sigmaYFor(task string) float64 {
	s := r.sigmaY
	if task == "denoise" && s == 0 {
		s = 0.1
	}
	return 2 * s
}

func (r *restoreFlags) backendOf() (nn.Backend, func(), error) {
	mf := modelFlags{backend: r.backend}
	return mf.backendOf()
}

// restoreModel is a pixel-space prior and the image size it works at.
type restoreModel struct {
	prior      restore.Prior
	c, h, w    int
	desc       string
	free       func()
	schedulerN string // where the noise schedule came from
}

// loadRestoreModel loads a pixel-space model: a diffusers UNet2DModel
// folder (unconditional), or a pipeline folder / pack whose VAE is absent
// (a conditional UNet, run with the prompt's embedding and no guidance).
func loadRestoreModel(be nn.Backend, r *restoreFlags) (*restoreModel, error) {
	path := r.model
	if path == "" {
		return nil, errors.New("--model is required")
	}
	st := nn.F32
	if r.f16 {
		st = nn.F16
	}
	_, errPack := os.Stat(filepath.Join(path, "manifest.json"))
	_, errPipe := os.Stat(filepath.Join(path, "model_index.json"))
	if errPack == nil || errPipe == nil {
		sd, err := samplers.LoadStableDiffusionAny(be, path, st)
		if err != nil {
			return nil, err
		}
		prior, freeCond, err := restore.PipelinePrior(be, sd, r.prompt, path)
		if err != nil {
			sd.Free()
			return nil, err
		}
		c, s := sd.UNet.Config.InChannels, sd.UNet.Config.SampleSize
		return &restoreModel{
			prior: prior,
			c:     c, h: s, w: s, desc: fmt.Sprintf("conditional pixel-space pipeline, prompt %q", r.prompt),
			free: func() { freeCond(); sd.Free() }, schedulerN: "pipeline scheduler",
		}, nil
	}
	m, err := nn.LoadUNet2DModelDir(be, path, st)
	if err != nil {
		return nil, err
	}
	h, w, err := sampleSize(m.Config.SampleSize)
	if err != nil {
		m.Free()
		return nil, err
	}
	cfg, src := samplers.SchedulerConfig{}, "DDPM defaults (linear β 1e-4…0.02, 1000 steps)"
	for _, f := range []string{filepath.Join(path, "scheduler_config.json"), filepath.Join(filepath.Dir(path), "scheduler", "scheduler_config.json")} {
		if _, err := os.Stat(f); err == nil {
			if cfg, err = samplers.LoadSchedulerConfig(f); err != nil {
				m.Free()
				return nil, err
			}
			src = f
			break
		}
	}
	return &restoreModel{prior: restore.Prior{Eps: samplers.UNetEps(m), Config: cfg}, c: m.Config.InChannels, h: h, w: w,
		desc: "unconditional UNet2DModel", free: m.Free, schedulerN: src}, nil
}

// sampleSize reads a UNet2DModel's sample_size (an int or [h, w]).
func sampleSize(v any) (int, int, error) {
	switch s := v.(type) {
	case float64:
		return int(s), int(s), nil
	case []any:
		if len(s) == 2 {
			h, ok1 := s[0].(float64)
			w, ok2 := s[1].(float64)
			if ok1 && ok2 {
				return int(h), int(w), nil
			}
		}
	}
	return 0, 0, fmt.Errorf("restore: sample_size %v: want an int or [h, w]", v)
}

// loadPicture decodes an image file.
func loadPicture(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, _, err := imageio.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// toModel converts a picture to the model's [1, C, H, W] values in [−1, 1]
// (centre crop, area resize; one channel = the mean of R, G, B).
func toModel(img image.Image, c, h, w int) ([]float32, error) {
	v, _, err := imageio.ToCHW(img, w, h)
	if err != nil {
		return nil, err
	}
	switch c {
	case 3:
		return v, nil
	case 1:
		g := make([]float32, h*w)
		for i := range g {
			g[i] = (v[i] + v[h*w+i] + v[2*h*w+i]) / 3
		}
		return g, nil
	}
	return nil, fmt.Errorf("restore: models with %d channels are not supported (1 or 3)", c)
}

// writeModelImage writes x [1, C, H, W] in [−1, 1] as an image.
func writeModelImage(be nn.Backend, x *nn.Tensor, path string) error {
	img := be.Affine(x, 0.5, 0.5)
	defer nn.Free(img)
	return writeImage(be, img, path)
}

// maskFor reads --mask (light = hole; the input picture's size, resized
// with the picture's crop, or the model's size: restore.UserMask), or
// makes a random mask.
func maskFor(maskPath string, random float64, seed uint64, pic image.Image, h, w int) ([]float32, error) {
	if maskPath != "" && random > 0 {
		return nil, errors.New("restore: give --mask or --mask-random, not both")
	}
	if random > 0 {
		return restore.RandomMask(h, w, random, seed)
	}
	if maskPath == "" {
		return nil, nil // centre box
	}
	mimg, err := loadPicture(maskPath)
	if err != nil {
		return nil, err
	}
	pb := pic.Bounds()
	known, err := restore.UserMask(mimg, pb.Dx(), pb.Dy(), w, h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", maskPath, err)
	}
	return known, nil
}

func cmdRestore(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	var rf restoreFlags
	rf.register(fs)
	in := fs.String("image", "", "input image (.png or .jpg): the clean picture to degrade and restore")
	task := fs.String("task", "inpaint", "task: "+strings.Join(restore.Tasks, ", "))
	solver := fs.String("solver", "ddnm", "solver: "+strings.Join(restore.Solvers, ", "))
	maskPath := fs.String("mask", "", "inpainting mask, light = hole: the size of --image (cropped and resized like it) or the model's (default: a centred box)")
	maskRandom := fs.Float64("mask-random", 0, "inpainting: drop this fraction of pixels at random instead")
	dst := fs.String("out", "out.png", "restored image")
	degraded := fs.String("degraded", "", "also write the degraded measurement y here (holes gray, low resolution for sr, gray for colorize)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" {
		return errors.New("restore: --image is required")
	}
	pic, err := loadPicture(*in)
	if err != nil {
		return err
	}
	be, closeBE, err := rf.backendOf()
	if err != nil {
		return err
	}
	defer closeBE()
	m, err := loadRestoreModel(be, &rf)
	if err != nil {
		return err
	}
	defer m.free()
	xv, err := toModel(pic, m.c, m.h, m.w)
	if err != nil {
		return err
	}
	known, err := maskFor(*maskPath, *maskRandom, rf.seed, pic, m.h, m.w)
	if err != nil {
		return err
	}
	op, err := restore.NewOperator(be, *task, m.c, restore.TaskOptions{Known: known, H: m.h, W: m.w, BlurSigma: rf.blurSigma})
	if err != nil {
		return err
	}
	defer op.Free()
	sigmaY := rf.sigmaYFor(*task)
	if err := restore.Supports(*solver, op, sigmaY); err != nil {
		return err
	}
	shape := []int{1, m.c, m.h, m.w}
	x := be.Upload(shape, xv)
	y, err := restore.Degrade(be, op, x, sigmaY, samplers.NewNoise(rf.seed^0x9e3779b97f4a7c15))
	nn.Free(x)
	if err != nil {
		return err
	}
	defer nn.Free(y)
	if *degraded != "" {
		if err := writeModelImage(be, y, *degraded); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "model: %s, %d×%d×%d, schedule: %s\n", m.desc, m.c, m.h, m.w, m.schedulerN)
	o := rf.options()
	o.OnStep = func(k int, _ *nn.Tensor) error {
		fmt.Fprintf(out, "\rstep %d/%d", k+1, rf.steps)
		return nil
	}
	start := time.Now()
	res, st, err := restore.Solve(be, *solver, m.prior, restore.Problem{Op: op, Y: y, Shape: shape, SigmaY: sigmaY}, o)
	fmt.Fprintln(out)
	if err != nil {
		return err
	}
	defer nn.Free(res)
	if err := writeModelImage(be, res, *dst); err != nil {
		return err
	}
	rv, err := be.Read(res)
	if err != nil {
		return err
	}
	psnr, _ := restore.PSNR(to01(xv), to01(rv))
	fmt.Fprintf(out, "wrote %s: %s × %s, %d model calls, %.1fs, PSNR vs the input %.2f dB\n", *dst, *task, *solver, st.Calls, time.Since(start).Seconds(), psnr)
	return nil
}

func to01(v []float32) []float32 {
	o := make([]float32, len(v))
	for i, f := range v {
		o[i] = min(max(f/2+0.5, 0), 1)
	}
	return o
}

// benchRow is one line of bench-restore: a task × solver averaged over the
// images (or one image with --per-image).
type benchRow struct {
	Task   string  `json:"task"`
	Solver string  `json:"solver"`
	Image  string  `json:"image,omitempty"`
	N      int     `json:"n"`
	PSNR   float64 `json:"psnr"`
	SSIM   float64 `json:"ssim"`
	Calls  float64 `json:"calls"`
	Ms     float64 `json:"ms"`
	Error  string  `json:"error,omitempty"`
}

func cmdBenchRestore(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench-restore", flag.ContinueOnError)
	var rf restoreFlags
	rf.register(fs)
	dir := fs.String("images", "", "folder of ground-truth PNGs")
	fashionN := fs.Int("fashion-mnist", 0, "instead of --images: the first N images of the class-balanced Fashion-MNIST test subset (docs/EDITING.md), padded to 32×32 as the trainer does; metrics on the 28×28 crop")
	dataDir := fs.String("data", "", "folder of the Fashion-MNIST IDX files (default: $FASHION_MNIST_DIR, else dpkg -L dataset-fashion-mnist)")
	limit := fs.Int("limit", 0, "use the first N images (sorted by name; 0: all)")
	tasks := fs.String("tasks", strings.Join(restore.Tasks, ","), "comma-separated tasks")
	solvers := fs.String("solvers", strings.Join(restore.Solvers, ","), "comma-separated solvers")
	perImage := fs.Bool("per-image", false, "one line per image as well")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var (
		files  []string
		subset []int
		pics   [][]float32
		crop   int
	)
	switch {
	case *dir != "" && *fashionN > 0:
		return errors.New("bench-restore: give --images or --fashion-mnist, not both")
	case *fashionN > 0:
		images, labels, err := loadFashionTest(fashionDir(*dataDir))
		if err != nil {
			return err
		}
		if subset, err = fashionSubset(labels, *fashionN); err != nil {
			return err
		}
		h, w := images.Dims[1], images.Dims[2]
		for _, idx := range subset {
			files = append(files, fmt.Sprintf("fashion-test-%05d", idx))
			pics = append(pics, padImage(images.Data[idx*h*w:(idx+1)*h*w], h, w, 2))
		}
		crop = 2
	case *dir != "":
		var err error
		if files, err = filepath.Glob(filepath.Join(*dir, "*.png")); err != nil {
			return err
		}
		sort.Strings(files)
		if *limit > 0 && len(files) > *limit {
			files = files[:*limit]
		}
		if len(files) == 0 {
			return fmt.Errorf("bench-restore: no PNG in %s", *dir)
		}
	default:
		return errors.New("bench-restore: --images or --fashion-mnist is required")
	}
	be, closeBE, err := rf.backendOf()
	if err != nil {
		return err
	}
	defer closeBE()
	m, err := loadRestoreModel(be, &rf)
	if err != nil {
		return err
	}
	defer m.free()
	truth := make([][]float32, len(files))
	for i, f := range files {
		if pics != nil {
			if m.c != 1 || m.h != 32 || m.w != 32 {
				return fmt.Errorf("bench-restore: --fashion-mnist needs a 1-channel 32×32 model, %s is %d×%d×%d", rf.model, m.c, m.h, m.w)
			}
			truth[i] = pics[i]
			continue
		}
		pic, err := loadPicture(f)
		if err != nil {
			return err
		}
		if truth[i], err = toModel(pic, m.c, m.h, m.w); err != nil {
			return err
		}
	}
	emit := func(r benchRow) {
		if *asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(out, string(b))
			return
		}
		if r.Error != "" {
			fmt.Fprintf(out, "%-9s %-8s %s error: %s\n", r.Task, r.Solver, r.Image, r.Error)
			return
		}
		fmt.Fprintf(out, "%-9s %-8s %-24s n=%-4d PSNR %6.2f dB  SSIM %.4f  calls %5.0f  %9.1f ms/image\n", r.Task, r.Solver, r.Image, r.N, r.PSNR, r.SSIM, r.Calls, r.Ms)
	}
	shape := []int{1, m.c, m.h, m.w}
	for _, task := range strings.Split(*tasks, ",") {
		task = strings.TrimSpace(task)
		if task == "colorize" && m.c != 3 {
			emit(benchRow{Task: task, Error: fmt.Sprintf("skipped: the model has %d channel(s)", m.c)})
			continue
		}
		op, err := restore.NewOperator(be, task, m.c, restore.TaskOptions{H: m.h, W: m.w, BlurSigma: rf.blurSigma})
		if err != nil {
			return err
		}
		sigmaY := rf.sigmaYFor(task)
		for _, solver := range strings.Split(*solvers, ",") {
			solver = strings.TrimSpace(solver)
			if err := restore.Supports(solver, op, sigmaY); err != nil {
				if !slices.Contains(restore.Solvers, solver) {
					op.Free()
					return err
				}
				continue
			}
			agg := benchRow{Task: task, Solver: solver}
			for i, f := range files {
				r, err := benchOne(be, m, op, solver, truth[i], shape, crop, sigmaY, rf, uint64(i))
				r.Task, r.Solver, r.Image = task, solver, filepath.Base(f)
				if err != nil {
					r.Error = err.Error()
					emit(r)
					agg.Error = "some images failed"
					continue
				}
				if *perImage {
					emit(r)
				}
				agg.N++
				agg.PSNR += r.PSNR
				agg.SSIM += r.SSIM
				agg.Calls += r.Calls
				agg.Ms += r.Ms
			}
			if agg.N > 0 {
				n := float64(agg.N)
				agg.PSNR, agg.SSIM, agg.Calls, agg.Ms = agg.PSNR/n, agg.SSIM/n, agg.Calls/n, agg.Ms/n
			}
			emit(agg)
		}
		op.Free()
	}
	return nil
}

// benchOne degrades one ground-truth image (noise seed = image index),
// restores it and scores the result in [0, 1], on the image less crop
// pixels at every border.
func benchOne(be nn.Backend, m *restoreModel, op restore.Operator, solver string, xv []float32, shape []int, crop int, sigmaY float64, rf restoreFlags, idx uint64) (benchRow, error) {
	x := be.Upload(shape, xv)
	y, err := restore.Degrade(be, op, x, sigmaY, samplers.NewNoise(1_000_003*idx+17))
	nn.Free(x)
	if err != nil {
		return benchRow{}, err
	}
	defer nn.Free(y)
	o := rf.options()
	o.Seed = rf.seed + idx
	start := time.Now()
	res, st, err := restore.Solve(be, solver, m.prior, restore.Problem{Op: op, Y: y, Shape: shape, SigmaY: sigmaY}, o)
	if err != nil {
		return benchRow{}, err
	}
	rv, err := be.Read(res) // waits for the device: the time includes the work
	nn.Free(res)
	if err != nil {
		return benchRow{}, err
	}
	ms := float64(time.Since(start).Microseconds()) / 1000
	a, b := to01(cropCHW(xv, shape, crop)), to01(cropCHW(rv, shape, crop))
	c, h, w := shape[1], shape[2]-2*crop, shape[3]-2*crop
	psnr, err := restore.PSNR(a, b)
	if err != nil {
		return benchRow{}, err
	}
	if math.IsInf(psnr, 1) {
		psnr = 100
	}
	ssim, err := restore.SSIM(a, b, c, h, w)
	if err != nil {
		return benchRow{}, err
	}
	return benchRow{N: 1, PSNR: psnr, SSIM: ssim, Calls: float64(st.Calls), Ms: ms}, nil
}

// cropCHW drops crop pixels at every border of a [1, C, H, W] image.
func cropCHW(v []float32, shape []int, crop int) []float32 {
	if crop == 0 {
		return v
	}
	c, h, w := shape[1], shape[2], shape[3]
	out := make([]float32, 0, c*(h-2*crop)*(w-2*crop))
	for ch := 0; ch < c; ch++ {
		for y := crop; y < h-crop; y++ {
			out = append(out, v[(ch*h+y)*w+crop:(ch*h+y)*w+w-crop]...)
		}
	}
	return out
}

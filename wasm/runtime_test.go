package main

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/imageio"
	"retrace/nn/pack"
	"retrace/samplers"
	"retrace/samplers/restore"
	"retrace/tools/testpack"
)

// tinyModel loads the tiny fixture pipeline from a pack written by
// tools/testpack (several 1 MiB shards).
func tinyModel(t *testing.T, be nn.Backend) (*Model, string) {
	dir := filepath.Join(t.TempDir(), "tiny")
	_, err := testpack.Write(golden.Dir(t), dir, "f16", 1<<20)
	require.NoError(t, err)
	m, err := LoadModel(be, pack.Dir(dir), "tiny")
	require.NoError(t, err)
	t.Cleanup(m.Free)
	return m, dir
}

func testPNG(t *testing.T, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// The runtime's edit equals the CLI path (imageio decode + ToCHW +
// EditImage) bit for bit, reports steps with previews, stops on cancel,
// and classifies bad inputs.
func TestRuntimeEdit(t *testing.T) {
	be := nn.NewCPU()
	m, dir := tinyModel(t, be)
	require.Equal(t, 16, m.Info.Resolution)
	require.Equal(t, 3, m.Info.Channels)
	require.Nil(t, m.Info.Vocabulary)
	require.Contains(t, m.Info.Methods, "direct")
	src := testPNG(t, 40, 24)

	// the CLI's path
	sd, err := samplers.LoadStableDiffusionPack(be, dir)
	require.NoError(t, err)
	defer sd.Free()
	img, _, err := imageio.Decode(bytes.NewReader(src))
	require.NoError(t, err)
	v, crop, err := imageio.ToCHW(img, 16, 16)
	require.NoError(t, err)
	x := be.Upload([]int{1, 3, 16, 16}, v)
	defer nn.Free(x)
	o := EditOptions{Image: Image{Encoded: src}, Source: "a photo of a horse", Target: "a photo of a zebra", Method: "edict", Steps: 3, Guidance: 3, Seed: 2, Cross: 0.8, Self: 0.4, Previews: true}
	ref, _, err := sd.EditImage(be, samplers.EditImageOptions{Image: x, Source: o.Source, Target: o.Target, Method: o.Method, Steps: o.Steps, Guidance: o.Guidance, Seed: o.Seed, CrossReplace: o.Cross, SelfReplace: o.Self})
	require.NoError(t, err)
	want, err := be.Read(ref)
	require.NoError(t, err)
	nn.Free(ref)

	var steps []Step
	res, err := m.Edit(be, o, func(s Step) error { steps = append(steps, s); return nil })
	require.NoError(t, err)
	require.Equal(t, ToRGBA(want, 3, 16, 16, false), res.Image)
	require.Equal(t, crop, res.Crop)
	require.Equal(t, image.Rect(8, 0, 32, 24), res.Crop)
	require.Equal(t, 16, res.Input.Width)
	require.Positive(t, res.Calls)
	require.NotEmpty(t, steps)
	for _, s := range steps {
		require.NotNil(t, s.Preview)
		require.Equal(t, 4*s.Preview.Width*s.Preview.Height, len(s.Preview.Pix))
		require.LessOrEqual(t, s.K, s.Steps)
	}

	// the same image as RGBA pixels gives the same result
	nrgba := image.NewNRGBA(img.Bounds())
	for y := 0; y < 24; y++ {
		for x := 0; x < 40; x++ {
			nrgba.Set(x, y, img.At(x, y))
		}
	}
	o2 := o
	o2.Image = Image{Width: 40, Height: 24, RGBA: nrgba.Pix}
	res2, err := m.Edit(be, o2, nil)
	require.NoError(t, err)
	require.Equal(t, res.Image, res2.Image)

	// cancel
	_, err = m.Edit(be, o, func(s Step) error {
		if s.K >= 1 {
			return ErrCanceled
		}
		return nil
	})
	require.ErrorIs(t, err, ErrCanceled)
	require.Equal(t, CodeCanceled, ErrorCode(err))
	require.NoError(t, be.Err())

	// bad inputs
	bad := o
	bad.Image = Image{Encoded: []byte("not an image")}
	_, err = m.Edit(be, bad, nil)
	require.Equal(t, CodeBadImage, ErrorCode(err), "%v", err)
	bad.Image = Image{Width: 10000, Height: 10000, RGBA: nil}
	_, err = m.Edit(be, bad, nil)
	require.Equal(t, CodeImageTooLarge, ErrorCode(err), "%v", err)
	bad.Image = Image{Width: 4, Height: 4, RGBA: make([]byte, 5)}
	_, err = m.Edit(be, bad, nil)
	require.Equal(t, CodeBadImage, ErrorCode(err), "%v", err)
	bad = o
	bad.Method = "magic"
	_, err = m.Edit(be, bad, nil)
	require.Equal(t, CodeBadOptions, ErrorCode(err), "%v", err)
	bad = o
	bad.Steps = 0
	_, err = m.Edit(be, bad, nil)
	require.Equal(t, CodeBadOptions, ErrorCode(err), "%v", err)
	bad = o
	bad.Target = "a photo of " + string(bytes.Repeat([]byte("horse "), 100))
	_, err = m.Edit(be, bad, nil)
	require.Equal(t, CodePromptTooLong, ErrorCode(err), "%v", err)
	require.NoError(t, be.Err())

	w, h, f, err := Probe(src)
	require.NoError(t, err)
	require.Equal(t, []any{40, 24, "png"}, []any{w, h, f})
	_, _, _, err = Probe([]byte("GIF89a"))
	require.Equal(t, CodeBadImage, ErrorCode(err))
}

// A reconstruction with an exact method returns the source (through the
// tiny VAE) and generation runs with previews.
func TestRuntimeGenerate(t *testing.T) {
	be := nn.NewCPU()
	m, _ := tinyModel(t, be)
	n := 0
	res, err := m.Generate(be, GenerateOptions{Prompt: "a photo of an astronaut", Steps: 3, Guidance: 7.5, Seed: 1, Previews: true}, func(s Step) error {
		n++
		require.Equal(t, n, s.K)
		require.Equal(t, 8, s.Preview.Width) // 4-channel latents of the tiny VAE (factor 2)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.Equal(t, 16, res.Image.Width)
	_, err = m.Generate(be, GenerateOptions{Prompt: "x", Steps: 3}, func(Step) error { return ErrCanceled })
	require.ErrorIs(t, err, ErrCanceled)
}

// A corrupted shard fails the load with a bad-pack error naming the shard.
func TestRuntimeBadPack(t *testing.T) {
	be := nn.NewCPU()
	dir := filepath.Join(t.TempDir(), "tiny")
	_, err := testpack.Write(golden.Dir(t), dir, "f16", 1<<20)
	require.NoError(t, err)
	p := filepath.Join(dir, "shard-00001.bin")
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	b[100] ^= 1
	require.NoError(t, os.WriteFile(p, b, 0o644))
	_, err = LoadModel(be, pack.Dir(dir), "tiny")
	require.ErrorContains(t, err, "shard 1")
	require.ErrorContains(t, err, "sha256")
	require.Equal(t, CodeBadPack, ErrorCode(err))
	_, err = LoadModel(be, pack.Dir(t.TempDir()), "none")
	require.Equal(t, CodeBadPack, ErrorCode(err))
	require.True(t, errors.Is(withCode(CodeQuota, ErrCanceled), ErrCanceled))
}

func TestRuntimeVocabulary(t *testing.T) {
	m := &pack.Manifest{Components: map[string]*pack.Component{"text_encoder": {Config: []byte(`{"classes": ["t-shirt", "bag"]}`)}}}
	require.Equal(t, []string{"t-shirt", "bag"}, Vocabulary(m))
	m.Components["text_encoder"].Config = []byte(`{"hidden_size": 32}`)
	require.Nil(t, Vocabulary(m))
	mod := &Model{Info: ModelInfo{Vocabulary: []string{"bag"}}}
	require.NoError(t, mod.checkPrompt("source", "bag"))
	require.Equal(t, CodeBadOptions, ErrorCode(mod.checkPrompt("source", "shoe")))
}

// Grayscale models get BT.601 luma; results of one channel are gray RGBA.
func TestRuntimeGray(t *testing.T) {
	m := &Model{Info: ModelInfo{Resolution: 2, Channels: 1}}
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := 0; i < 4; i++ {
		img.Pix[4*i], img.Pix[4*i+3] = 255, 255 // red
	}
	v, _, err := m.ModelInput(img)
	require.NoError(t, err)
	require.InDelta(t, 0.299*1+0.587*-1+0.114*-1, v[0], 1e-6)
	p := ToRGBA([]float32{0, 0.5, 1, 2}, 1, 2, 2, false)
	require.Equal(t, []byte{0, 0, 0, 255, 128, 128, 128, 255, 255, 255, 255, 255, 255, 255, 255, 255}, p.Pix)
}

// fashionModel loads the default model (models/fashion, pixel-space 32×32
// grayscale) from a pack converted into a temp dir.
func fashionModel(t *testing.T, be nn.Backend) (*Model, string) {
	src := filepath.Join(golden.RepoRoot(t), "models", "fashion")
	if _, err := os.Stat(src); err != nil {
		t.Skipf("default model not present: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "fashion")
	_, err := pack.Convert(src, dir, pack.Policy{Mode: "f16"}, 1<<20, nil)
	require.NoError(t, err)
	m, err := LoadModel(be, pack.Dir(dir), "fashion")
	require.NoError(t, err)
	t.Cleanup(m.Free)
	return m, dir
}

// boxMask is a w×h RGBA mask (opaque black = keep) with a white box.
func boxMask(w, h int, box image.Rectangle) Image {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA{0, 0, 0, 255}
			if (image.Point{x, y}).In(box) {
				c = color.NRGBA{255, 255, 255, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return Image{Width: w, Height: h, RGBA: img.Pix}
}

// restore() equals the CLI's code path (restore.PipelinePrior,
// UserMask, NewOperator, Degrade, Solve) bit for bit, reports x̂₀
// previews and metrics, and gives clear coded errors for empty and
// wrong-size masks, unsupported task × solver and latent models.
func TestRuntimeRestore(t *testing.T) {
	be := nn.NewCPU()
	m, _ := fashionModel(t, be)
	require.Equal(t, 32, m.Info.Resolution)
	require.Equal(t, 1, m.Info.Channels)
	require.NotNil(t, m.Info.Restore)
	require.NotContains(t, m.Info.Restore.Tasks, "colorize", "a grayscale model")
	require.Contains(t, m.Info.Restore.Solvers["inpaint"], "sde")
	require.NotContains(t, m.Info.Restore.Solvers["deblur"], "ddnm")
	require.NotContains(t, m.Info.Restore.Solvers["denoise"], "sde")

	src := testPNG(t, 40, 24)
	img, _, err := imageio.Decode(bytes.NewReader(src))
	require.NoError(t, err)
	box := image.Rect(8, 10, 20, 22)
	o := RestoreOptions{Image: Image{Encoded: src}, Task: "inpaint", Solver: "ddnm", Steps: 3, Seed: 5, SigmaY: -1,
		Mask: ptr(boxMask(32, 32, box)), Clean: &Image{Encoded: src}, Previews: true}

	// the CLI's path
	v, _, err := m.ModelInput(img)
	require.NoError(t, err)
	prior, free, err := restore.PipelinePrior(be, m.SD, "", "fashion")
	require.NoError(t, err)
	defer free()
	mi, err := o.Mask.decode()
	require.NoError(t, err)
	known, err := restore.UserMask(mi, 40, 24, 32, 32)
	require.NoError(t, err)
	op, err := restore.NewOperator(be, "inpaint", 1, restore.TaskOptions{Known: known, H: 32, W: 32})
	require.NoError(t, err)
	defer op.Free()
	shape := []int{1, 1, 32, 32}
	x := be.Upload(shape, v)
	y, err := restore.Degrade(be, op, x, 0, samplers.NewNoise(o.Seed^0x9e3779b97f4a7c15))
	require.NoError(t, err)
	ref, st, err := restore.Solve(be, "ddnm", prior, restore.Problem{Op: op, Y: y, Shape: shape}, restore.Options{Steps: 3, Seed: 5})
	require.NoError(t, err)
	want, err := be.Read(ref)
	require.NoError(t, err)
	nn.Free(x, y, ref)

	var steps []Step
	res, err := m.Restore(be, o, func(s Step) error { steps = append(steps, s); return nil })
	require.NoError(t, err)
	require.Equal(t, ToRGBA(want, 1, 32, 32, true), res.Image)
	require.Equal(t, st.Calls, res.Calls)
	require.Len(t, steps, 3)
	for i, s := range steps {
		require.Equal(t, i+1, s.K)
		require.Equal(t, 32, s.Preview.Width)
	}
	require.Equal(t, 32, res.Degraded.Width)
	require.Equal(t, byte(128), res.Degraded.Pix[4*(15*32+10)], "holes are 0 (mid-gray) in y")
	require.NotNil(t, res.PSNR)
	require.Greater(t, *res.PSNR, 5.0)
	require.Greater(t, *res.SSIM, 0.0)
	require.Equal(t, image.Rect(8, 0, 32, 24), res.Crop)

	// a mask of the picture's size gets the picture's crop: the box
	// scaled by 24/32 and shifted by the crop's x = 8
	o2 := o
	o2.Mask = ptr(boxMask(40, 24, image.Rect(8+6, 7, 8+15, 16))) // 24 px → 32: ×4/3
	o2.Clean = nil
	res2, err := m.Restore(be, o2, nil)
	require.NoError(t, err)
	require.Nil(t, res2.PSNR)

	// other tasks
	for _, c := range [][2]string{{"sr2", "ddnm"}, {"sr4", "dds"}, {"deblur", "reddiff"}, {"denoise", "pinv"}} {
		oc := o
		oc.Task, oc.Solver, oc.Mask, oc.Steps = c[0], c[1], nil, 2
		r, err := m.Restore(be, oc, nil)
		require.NoError(t, err, c)
		require.Equal(t, 32, r.Image.Width)
	}
	oc := o
	oc.Task, oc.Solver, oc.Mask = "sr4", "pinv", nil
	r, err := m.Restore(be, oc, nil)
	require.NoError(t, err)
	require.Equal(t, 8, r.Degraded.Width, "y of ×4 super-resolution is 8×8")

	// bad inputs
	bad := o
	bad.Mask = ptr(boxMask(32, 32, image.Rectangle{}))
	_, err = m.Restore(be, bad, nil)
	require.Equal(t, CodeBadMask, ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, "mask is empty: paint the region to fill")
	bad.Mask = ptr(boxMask(7, 5, image.Rect(0, 0, 7, 5)))
	_, err = m.Restore(be, bad, nil)
	require.Equal(t, CodeBadMask, ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, "mask is 7×5, the image is 40×24")
	require.ErrorContains(t, err, "32×32")
	bad.Mask = &Image{Width: 32, Height: 32, RGBA: make([]byte, 3)}
	_, err = m.Restore(be, bad, nil)
	require.Equal(t, CodeBadMask, ErrorCode(err), "%v", err)
	for _, c := range [][2]string{{"deblur", "ddnm"}, {"sr2", "sde"}, {"paint", "ddnm"}, {"inpaint", "magic"}} {
		bad = o
		bad.Task, bad.Solver = c[0], c[1]
		_, err = m.Restore(be, bad, nil)
		require.Equal(t, CodeBadOptions, ErrorCode(err), "%v: %v", c, err)
	}
	bad = o
	bad.Steps = 0
	_, err = m.Restore(be, bad, nil)
	require.Equal(t, CodeBadOptions, ErrorCode(err), "%v", err)
	bad = o
	bad.Image = Image{Encoded: []byte("not an image")}
	_, err = m.Restore(be, bad, nil)
	require.Equal(t, CodeBadImage, ErrorCode(err), "%v", err)
	_, err = m.Restore(be, o, func(Step) error { return ErrCanceled })
	require.ErrorIs(t, err, ErrCanceled)
	require.NoError(t, be.Err())

	// a latent-space model is refused
	tiny, _ := tinyModel(t, be)
	require.Nil(t, tiny.Info.Restore)
	_, err = tiny.Restore(be, o, nil)
	require.Equal(t, CodeUnsupportedModel, ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, "pixel-space")
}

func ptr[T any](v T) *T { return &v }

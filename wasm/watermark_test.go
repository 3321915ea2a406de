package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
	"retrace/nn/imageio"
	"retrace/samplers"
	"retrace/samplers/watermark"
)

// texturePNG is a w×h picture with smooth colour and some grain (a
// stand-in for a photo).
func texturePNG(t *testing.T, w, h int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			n := r.IntN(41) - 20
			c := func(v int) uint8 { return uint8(min(max(v+n, 0), 255)) }
			img.SetNRGBA(x, y, color.NRGBA{c(60 + x*150/w), c(200 - y*120/h), c(90 + (x+y)%64), 255})
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// noisePNG is a w×h picture of uniform colour noise: every 4×4 block of
// DwtDct's band has one clearly largest coefficient, so a 256×256 picture
// (32 blocks per bit) carries a 32-bit payload exactly. Smooth pictures of
// that size lose some bits (the library's algorithm: the marked
// coefficient stops being its block's largest); larger ones do better.
func noisePNG(t *testing.T, w, h int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func encodePNG(t *testing.T, p RGBA) []byte {
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, p.toNRGBA()))
	return b.Bytes()
}

// DwtDct in the runtime: the mark equals the package's (the CLI's code),
// survives PNG, decodes with and without the expected payload; unmarked
// pictures read as not marked; bad payloads and small images give coded
// errors naming the limits. No model is needed.
func TestWatermarkDwtDct(t *testing.T) {
	src := noisePNG(t, 256, 256, 1)
	o := WatermarkEmbedOptions{Scheme: SchemeDwtDct, Image: Image{Encoded: src}, Payload: "rtrc"}
	res, err := EmbedDwtDct(o)
	require.NoError(t, err)
	require.Equal(t, 256, res.Image.Width)
	require.Equal(t, "01110010011101000111001001100011", res.extra["bits"])
	img, _, err := imageio.Decode(bytes.NewReader(src))
	require.NoError(t, err)
	want, err := watermark.EmbedDwtDct(img, watermark.BitsFromString("rtrc"))
	require.NoError(t, err)
	require.Equal(t, want.Pix, res.Image.Pix, "the runtime marks as samplers/watermark does")

	marked := encodePNG(t, res.Image)
	rep, err := DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: marked}}, nil)
	require.NoError(t, err)
	d := rep.DwtDct
	t.Logf("marked: bits %s text %q confidence %.3f", d.Bits, d.Text, d.Confidence)
	require.Equal(t, VerdictMarked, d.Verdict)
	require.Equal(t, "rtrc", d.Text)
	require.Equal(t, 32, d.NBits)
	require.Greater(t, d.Confidence, DwtDctConfidence)
	require.Nil(t, d.Match)
	require.True(t, rep.Marked)
	require.Equal(t, VerdictNotRun, rep.TreeRing.Verdict, "no model: Tree-Ring does not run")
	require.Equal(t, CodeNoModel, rep.TreeRing.Error.Code)
	require.Equal(t, VerdictNotRun, rep.SafeSD.Verdict, "no model: Safe-SD does not run")
	require.Equal(t, CodeNoModel, rep.SafeSD.Error.Code)

	// the RGBA form, an expected payload, bits
	rep, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Width: 256, Height: 256, RGBA: res.Image.Pix}, Payload: "rtrc", Schemes: []string{SchemeDwtDct}}, nil)
	require.NoError(t, err)
	require.True(t, *rep.DwtDct.Match)
	require.Equal(t, 1.0, *rep.DwtDct.BitAccuracy)
	require.Nil(t, rep.TreeRing, "only the schemes asked for run")
	rep, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: marked}, Payload: "rtrd"}, nil)
	require.NoError(t, err)
	require.False(t, *rep.DwtDct.Match)
	require.Equal(t, VerdictNotMarked, rep.DwtDct.Verdict)
	bits, err := EmbedDwtDct(WatermarkEmbedOptions{Image: Image{Encoded: src}, Bits: "0b1011_0010_1110"})
	require.NoError(t, err)
	rep, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: encodePNG(t, bits.Image)}, NBits: 12}, nil)
	require.NoError(t, err)
	require.Equal(t, "101100101110", rep.DwtDct.Bits)
	require.Empty(t, rep.DwtDct.Text, "12 bits are no text")

	// unmarked pictures
	for i, p := range [][]byte{src, texturePNG(t, 300, 260, 2), testPNG(t, 256, 256), noisePNG(t, 400, 300, 5)} {
		rep, err := DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: p}}, nil)
		require.NoError(t, err)
		t.Logf("unmarked %d: bits %s confidence %.3f", i, rep.DwtDct.Bits, rep.DwtDct.Confidence)
		require.Equal(t, VerdictNotMarked, rep.DwtDct.Verdict, "picture %d", i)
		require.False(t, rep.Marked)
	}
	// the photo invisible-watermark itself marked with b"test" (the
	// golden fixture), its original, and the mark after 4:2:0 JPEG (which
	// reads as all zeros)
	dir, _ := golden.Open(t, "dwtdct")
	for _, c := range []struct {
		file, verdict, text string
	}{
		{"astronaut_bytes_test_marked.png", VerdictMarked, "test"},
		{"astronaut_orig512.png", VerdictNotMarked, ""},
		{"astronaut_bytes_test_q90.cv2decoded.png", VerdictNotMarked, ""},
	} {
		b, err := os.ReadFile(filepath.Join(dir, c.file))
		require.NoError(t, err)
		rep, err := DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: b}}, nil)
		require.NoError(t, err)
		t.Logf("%s: %s, bits %s text %q confidence %.3f", c.file, rep.DwtDct.Verdict, rep.DwtDct.Bits, rep.DwtDct.Text, rep.DwtDct.Confidence)
		require.Equal(t, c.verdict, rep.DwtDct.Verdict, c.file)
		if c.text != "" {
			require.Equal(t, c.text, rep.DwtDct.Text)
		}
	}

	// errors
	small := texturePNG(t, 255, 256, 3)
	_, err = EmbedDwtDct(WatermarkEmbedOptions{Image: Image{Encoded: small}, Payload: "x"})
	require.Equal(t, CodeImageTooSmall, ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, "255×256")
	require.ErrorContains(t, err, "at least 256×256")
	_, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: small}, Schemes: []string{SchemeDwtDct}}, nil)
	require.Equal(t, CodeImageTooSmall, ErrorCode(err), "%v", err)
	rep, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: small}}, nil)
	require.NoError(t, err, "with every scheme, a scheme that cannot run is reported, not thrown")
	require.Equal(t, CodeImageTooSmall, rep.DwtDct.Error.Code)
	require.Equal(t, VerdictNotRun, rep.DwtDct.Verdict)
	for _, c := range []struct{ text, bits, msg string }{
		{"", "", "needs a payload"},
		{"a", "01", "not both"},
		{"", "10a1", "'a' at position 2"},
		{string(bytes.Repeat([]byte("x"), 200)), "", "1600 bits (at most 1024)"},
	} {
		_, err := EmbedDwtDct(WatermarkEmbedOptions{Image: Image{Encoded: src}, Payload: c.text, Bits: c.bits})
		require.Equal(t, CodeBadPayload, ErrorCode(err), "%v", err)
		require.ErrorContains(t, err, c.msg)
	}
	_, err = EmbedDwtDct(WatermarkEmbedOptions{Image: Image{Encoded: texturePNG(t, 256, 256, 4)}, Bits: string(bytes.Repeat([]byte("1"), 1024))})
	require.NoError(t, err, "1024 bits fit 1024 blocks")
	_, err = EmbedDwtDct(WatermarkEmbedOptions{Image: Image{Encoded: []byte("nope")}, Payload: "x"})
	require.Equal(t, CodeBadImage, ErrorCode(err), "%v", err)
	_, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: src}, Payload: "ab", NBits: 8}, nil)
	require.Equal(t, CodeBadPayload, ErrorCode(err), "%v", err)
	_, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: src}, Schemes: []string{"qr"}}, nil)
	require.Equal(t, CodeBadOptions, ErrorCode(err), "%v", err)
	_, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: src}, Schemes: []string{SchemeSafeSD}}, nil)
	require.Equal(t, CodeNoModel, ErrorCode(err), "%v", err)
	_, err = DetectWatermarks(nil, nil, WatermarkDetectOptions{Image: Image{Encoded: src}, Schemes: []string{SchemeTreeRing}}, nil)
	require.Equal(t, CodeNoModel, ErrorCode(err), "%v", err)
}

// Tree-Ring with the default model: a marked generation is detected
// (p < 0.01) by inverting it, its unmarked twin (same seed, no key), a
// real Fashion-MNIST image and the marked image under another key are
// not; the inversion reports its steps and stops on cancel.
func TestWatermarkTreeRing(t *testing.T) {
	be := nn.NewCPU()
	m, _ := fashionModel(t, be)
	key := TreeRingKeyOptions{Seed: 7}
	o := WatermarkEmbedOptions{Scheme: SchemeTreeRing, Generate: GenerateOptions{Prompt: "trouser", Steps: 10, Guidance: 3, Seed: 1, Previews: true}, Key: key}
	n := 0
	mk, err := m.EmbedTreeRing(be, o, func(s Step) error {
		n++
		require.Equal(t, n, s.K)
		require.NotNil(t, s.Preview)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 10, n)
	require.Equal(t, 32, mk.Image.Width)
	require.Equal(t, TreeRingKeyInfo{Seed: 7, Pattern: "rand", Channel: 0, Radius: 5}, mk.extra["key"])
	clean, err := m.Generate(be, o.Generate, nil)
	require.NoError(t, err)
	require.NotEqual(t, clean.Image.Pix, mk.Image.Pix)

	detect := func(p RGBA, k TreeRingKeyOptions, onStep func(Step) error) *WatermarkReport {
		rep, err := DetectWatermarks(m, be, WatermarkDetectOptions{Image: Image{Encoded: encodePNG(t, p)}, Key: k}, onStep)
		require.NoError(t, err)
		return rep
	}
	var steps []int
	rep := detect(mk.Image, key, func(s Step) error {
		steps = append(steps, s.K)
		require.Equal(t, 10, s.Steps)
		return nil
	})
	tr := rep.TreeRing
	t.Logf("marked: %s, metric %.2f, p %.3g (log10 %.2f), %d calls", tr.Verdict, tr.Metric, tr.PValue, tr.Log10P, tr.Calls)
	require.Equal(t, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, steps)
	require.Equal(t, VerdictMarked, tr.Verdict)
	require.Less(t, tr.PValue, 0.01)
	require.Equal(t, "ddim", tr.Method)
	require.Equal(t, 10, tr.Calls)
	require.True(t, rep.Marked)
	require.Equal(t, CodeImageTooSmall, rep.DwtDct.Error.Code, "a 32×32 generation is too small for DwtDct")

	rep = detect(clean.Image, key, nil)
	t.Logf("unmarked twin: %s, metric %.2f, p %.3g", rep.TreeRing.Verdict, rep.TreeRing.Metric, rep.TreeRing.PValue)
	require.Equal(t, VerdictNotMarked, rep.TreeRing.Verdict)
	require.False(t, rep.Marked)
	rep = detect(mk.Image, TreeRingKeyOptions{Seed: 8}, nil)
	t.Logf("marked, another key: %s, metric %.2f, p %.3g", rep.TreeRing.Verdict, rep.TreeRing.Metric, rep.TreeRing.PValue)
	require.Equal(t, VerdictNotMarked, rep.TreeRing.Verdict)
	real, err := os.ReadFile(filepath.Join(golden.RepoRoot(t), "testdata", "fashion", "t10k-00002-trouser.png"))
	require.NoError(t, err)
	rep, err = DetectWatermarks(m, be, WatermarkDetectOptions{Image: Image{Encoded: real}, Key: key, Method: "edict", Steps: 5}, nil)
	require.NoError(t, err)
	t.Logf("real image (edict, 5 steps): %s, metric %.2f, p %.3g, %d calls", rep.TreeRing.Verdict, rep.TreeRing.Metric, rep.TreeRing.PValue, rep.TreeRing.Calls)
	require.Equal(t, VerdictNotMarked, rep.TreeRing.Verdict)
	require.Equal(t, 10, rep.TreeRing.Calls)

	// cancel, errors
	_, err = DetectWatermarks(m, be, WatermarkDetectOptions{Image: Image{Encoded: real}, Key: key}, func(s Step) error { return ErrCanceled })
	require.ErrorIs(t, err, ErrCanceled)
	require.Equal(t, CodeCanceled, ErrorCode(err))
	for _, bad := range []WatermarkDetectOptions{
		{Method: "ef-ddpm"}, {Steps: -1}, {Alpha: 2}, {Key: TreeRingKeyOptions{Pattern: "zigzag"}, Schemes: []string{SchemeTreeRing}},
		{Key: TreeRingKeyOptions{Radius: 40}, Schemes: []string{SchemeTreeRing}}, {Prompt: "hat", Schemes: []string{SchemeTreeRing}},
	} {
		bad.Image = Image{Encoded: real}
		_, err := DetectWatermarks(m, be, bad, nil)
		require.Equal(t, CodeBadOptions, ErrorCode(err), "%+v: %v", bad, err)
	}
	bo := o
	bo.Key.Pattern = "zigzag"
	_, err = m.EmbedTreeRing(be, bo, nil)
	require.Equal(t, CodeBadOptions, ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, "rand or ring")
	bo = o
	bo.Generate.Prompt = "hat"
	_, err = m.EmbedTreeRing(be, bo, nil)
	require.Equal(t, CodeBadOptions, ErrorCode(err), "%v", err)
	bo = o
	bo.Generate.Steps = 0
	_, err = m.EmbedTreeRing(be, bo, nil)
	require.Equal(t, CodeBadOptions, ErrorCode(err), "%v", err)
	require.NoError(t, be.Err())
}

// Safe-SD with the default model's pack (its safesd component): a
// generation whose prompt carries the trigger equals the package's
// GenerateSafeSD (the CLI's code) and the page's PNG decodes to the
// payload; the same generation without the trigger, a real Fashion-MNIST
// image and another seed's clean image read as not marked; payload,
// trigger and prompt errors are coded; a pack without the component
// reports "not available" (never a fake result).
func TestWatermarkSafeSD(t *testing.T) {
	be := nn.NewCPU()
	m, _ := fashionModel(t, be)
	require.NotNil(t, m.SafeSD, "the default model's pack carries the safesd component")
	require.Equal(t, &SafeSDInfo{Trigger: "#wm", MaxPayload: 7, Modules: 21, ImageSize: 32, Embed: true}, m.Info.SafeSD)

	g := GenerateOptions{Prompt: "trouser #wm", Steps: 8, Guidance: 1.5, Seed: 3, Previews: true}
	o := WatermarkEmbedOptions{Scheme: SchemeSafeSD, Generate: g, Payload: "rt-42"}
	n := 0
	mk, err := m.EmbedSafeSD(be, o, func(s Step) error {
		n++
		require.Equal(t, n, s.K)
		require.NotNil(t, s.Preview)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 8, n)
	require.Equal(t, 32, mk.Image.Width)
	require.Equal(t, SchemeSafeSD, mk.extra["scheme"])
	require.Equal(t, "rt-42", mk.extra["payload"])
	require.Equal(t, "#wm", mk.extra["trigger"])
	require.Equal(t, "trouser", mk.extra["prompt"])
	require.Equal(t, true, mk.extra["marked"])
	code, err := m.SafeSD.Code("rt-42")
	require.NoError(t, err)
	bits := mk.extra["qr"].([]any)
	require.Len(t, bits, 441)
	for i, d := range code.Modules {
		require.Equal(t, map[bool]int{true: 1, false: 0}[d], bits[i], "module %d", i)
	}

	// the package's path (the CLI's code) gives the same pixels
	img, marked, err := m.SafeSD.GenerateSafeSD(be, m.SD, samplers.GenerateOptions{Prompt: g.Prompt, Steps: g.Steps, Guidance: g.Guidance, Seed: g.Seed, Height: 32, Width: 32}, "#wm", "rt-42")
	require.NoError(t, err)
	require.True(t, marked)
	ref, err := m.result(be, img)
	nn.Free(img)
	require.NoError(t, err)
	require.Equal(t, ref.Image.Pix, mk.Image.Pix)

	detect := func(png []byte) *WatermarkReport {
		rep, err := DetectWatermarks(m, be, WatermarkDetectOptions{Image: Image{Encoded: png}, Steps: 2}, nil)
		require.NoError(t, err)
		require.NotNil(t, rep.SafeSD)
		require.Len(t, rep.SafeSD.Probs, 441)
		require.Equal(t, 21, rep.SafeSD.Modules)
		return rep
	}
	rep := detect(encodePNG(t, mk.Image))
	s := rep.SafeSD
	t.Logf("marked: %s, payload %q, %d corrected, %d erasures, agreement %.3f, confidence %.3f, %.0f ms", s.Verdict, s.Payload, s.Corrected, s.Erasures, s.ModuleAgreement, s.Confidence, s.Ms)
	require.Equal(t, VerdictMarked, s.Verdict)
	require.True(t, s.Marked)
	require.Equal(t, "rt-42", s.Payload)
	require.Nil(t, s.Error)
	require.Greater(t, s.ModuleAgreement, 0.8)
	require.True(t, rep.Marked, "the overall verdict includes Safe-SD")
	// the RGBA form reads the same
	rep2, err := DetectWatermarks(m, be, WatermarkDetectOptions{Image: Image{Width: 32, Height: 32, RGBA: mk.Image.Pix}, Schemes: []string{SchemeSafeSD}}, nil)
	require.NoError(t, err)
	require.Equal(t, s.Probs, rep2.SafeSD.Probs)
	require.Nil(t, rep2.TreeRing)
	// an upscaled copy (the CLI's crop and resize) still decodes
	up := image.NewNRGBA(image.Rect(0, 0, 96, 96))
	for y := 0; y < 96; y++ {
		for x := 0; x < 96; x++ {
			up.Set(x, y, mk.Image.toNRGBA().At(x/3, y/3))
		}
	}
	var ub bytes.Buffer
	require.NoError(t, png.Encode(&ub, up))
	rep = detect(ub.Bytes())
	require.Equal(t, "rt-42", rep.SafeSD.Payload, "the 96×96 copy")

	// unmarked: the same generation without the trigger, a real image
	twin := g
	twin.Prompt = "trouser"
	clean, err := m.Generate(be, twin, nil)
	require.NoError(t, err)
	require.NotEqual(t, clean.Image.Pix, mk.Image.Pix)
	real, err := os.ReadFile(filepath.Join(golden.RepoRoot(t), "testdata", "fashion", "t10k-00002-trouser.png"))
	require.NoError(t, err)
	for name, p := range map[string][]byte{"twin": encodePNG(t, clean.Image), "real": real, "texture": texturePNG(t, 64, 64, 9)} {
		rep := detect(p)
		t.Logf("%s: %s (%s), confidence %.3f", name, rep.SafeSD.Verdict, rep.SafeSD.Reason, rep.SafeSD.Confidence)
		require.Equal(t, VerdictNotMarked, rep.SafeSD.Verdict, name)
		require.False(t, rep.SafeSD.Marked)
		require.Empty(t, rep.SafeSD.Payload)
		require.NotEmpty(t, rep.SafeSD.Reason)
	}

	// another trigger word
	o2 := o
	o2.Trigger, o2.Generate.Prompt, o2.Generate.Steps = "@mark", "@mark dress", 3
	res, err := m.EmbedSafeSD(be, o2, nil)
	require.NoError(t, err)
	require.Equal(t, "dress", res.extra["prompt"])

	// errors
	for _, c := range []struct {
		mod  func(*WatermarkEmbedOptions)
		code string
		msg  string
	}{
		{func(o *WatermarkEmbedOptions) { o.Generate.Prompt = "trouser" }, CodeBadOptions, `lacks the trigger word "#wm", so the image would carry no mark (add it as a separate word, e.g. "trouser #wm")`},
		{func(o *WatermarkEmbedOptions) { o.Generate.Prompt = "trouser#wm" }, CodeBadOptions, "lacks the trigger word"},
		{func(o *WatermarkEmbedOptions) { o.Payload = "" }, CodeBadPayload, "an ID of 1–7 bytes"},
		{func(o *WatermarkEmbedOptions) { o.Payload = "12345678" }, CodeBadPayload, "has 8 bytes; a Safe-SD QR code (version 1, level H) holds at most 7"},
		{func(o *WatermarkEmbedOptions) { o.Payload = "héllo!!" }, CodeBadPayload, "has 8 bytes"},
		{func(o *WatermarkEmbedOptions) { o.Trigger = "# wm" }, CodeBadOptions, "one word"},
		{func(o *WatermarkEmbedOptions) { o.Generate.Prompt = "hat #wm" }, CodeBadOptions, "not one of the model's classes"},
		{func(o *WatermarkEmbedOptions) { o.Generate.Steps = 0 }, CodeBadOptions, "0 steps"},
	} {
		bo := o
		c.mod(&bo)
		_, err := m.EmbedSafeSD(be, bo, nil)
		require.Equal(t, c.code, ErrorCode(err), "%v", err)
		require.ErrorContains(t, err, c.msg)
	}
	_, err = m.EmbedSafeSD(be, o, func(Step) error { return ErrCanceled })
	require.ErrorIs(t, err, ErrCanceled)
	require.NoError(t, be.Err())
}

// A pack without a safesd component loads and works; Safe-SD reports
// "not available" in detection and rejects embedding and an explicit
// Safe-SD detection with unsupported-model.
func TestWatermarkSafeSDMissing(t *testing.T) {
	be := nn.NewCPU()
	m, _ := tinyModel(t, be)
	require.Nil(t, m.SafeSD)
	require.Nil(t, m.Info.SafeSD)
	src := testPNG(t, 40, 40)
	rep, err := DetectWatermarks(m, be, WatermarkDetectOptions{Image: Image{Encoded: src}, Steps: 1}, nil)
	require.NoError(t, err)
	require.Equal(t, VerdictNotAvailable, rep.SafeSD.Verdict)
	require.Contains(t, rep.SafeSD.Reason, "not available: this model has no Safe-SD injector/detector")
	require.False(t, rep.SafeSD.Marked)
	require.Nil(t, rep.SafeSD.Probs)
	_, err = DetectWatermarks(m, be, WatermarkDetectOptions{Image: Image{Encoded: src}, Schemes: []string{SchemeSafeSD}}, nil)
	require.Equal(t, CodeUnsupportedModel, ErrorCode(err), "%v", err)
	require.ErrorContains(t, err, "no Safe-SD injector/detector")
	_, err = m.EmbedSafeSD(be, WatermarkEmbedOptions{Scheme: SchemeSafeSD, Generate: GenerateOptions{Prompt: "a cat #wm", Steps: 1}, Payload: "x"}, nil)
	require.Equal(t, CodeUnsupportedModel, ErrorCode(err), "%v", err)
}

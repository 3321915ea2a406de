//go:build !js

package e2e

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/imageio"
	"retrace/samplers"
)

// editSettings are the settings the test types into the page and gives
// the native run.
type editSettings struct {
	Source, Target, Method string
	Steps                  int
	Guidance               float64
	Seed                   uint64
	Reconstruct            bool
}

// nativeEdit runs the same edit as the page with the same code on the Go
// CPU backend: pack → pipeline, PNG → imageio.Decode → imageio.ToCHW at the
// model's resolution → EditImage → RGBA.
func nativeEdit(t *testing.T, packDir, imgPath string, s editSettings) *image.NRGBA {
	be := nn.NewCPU()
	sd, err := samplers.LoadStableDiffusionPack(be, packDir)
	require.NoError(t, err)
	defer sd.Free()
	x := modelInput(t, be, sd, imgPath)
	defer nn.Free(x)
	out, _, err := sd.EditImage(be, samplers.EditImageOptions{
		Image: x, Source: s.Source, Target: s.Target, Method: s.Method, Steps: s.Steps,
		Guidance: float32(s.Guidance), Seed: s.Seed, ReconstructOnly: s.Reconstruct,
		// The page's defaults for Direct Inversion + P2P (unused by the
		// other methods).
		CrossReplace: 0.8, SelfReplace: 0.4,
	})
	require.NoError(t, err)
	defer nn.Free(out)
	return toImage(t, be, out)
}

// nativeVAERoundTrip is decode(encode(x)): what an exact inversion's
// reconstruction returns (the tiny VAE is random, so this is not x).
func nativeVAERoundTrip(t *testing.T, packDir, imgPath string) *image.NRGBA {
	be := nn.NewCPU()
	sd, err := samplers.LoadStableDiffusionPack(be, packDir)
	require.NoError(t, err)
	defer sd.Free()
	x := modelInput(t, be, sd, imgPath)
	defer nn.Free(x)
	z, err := sd.EncodeImage(be, x)
	require.NoError(t, err)
	defer nn.Free(z)
	dec := z
	if sd.VAE != nil {
		s := be.Affine(z, 1/sd.VAE.Config.ScalingFactor, 0)
		dec, err = sd.VAE.Decode(be, s)
		nn.Free(s)
		require.NoError(t, err)
		defer nn.Free(dec)
	}
	a := be.Affine(dec, 0.5, 0.5)
	img := be.Clamp(a, 0, 1)
	nn.Free(a)
	require.NoError(t, be.Err())
	defer nn.Free(img)
	return toImage(t, be, img)
}

func modelSize(sd *samplers.StableDiffusion) int {
	f := 1
	if sd.VAE != nil {
		f = sd.VAE.Factor()
	}
	return sd.UNet.Config.SampleSize * f
}

func modelInput(t *testing.T, be nn.Backend, sd *samplers.StableDiffusion, imgPath string) *nn.Tensor {
	f, err := os.Open(imgPath)
	require.NoError(t, err)
	defer f.Close()
	img, _, err := imageio.Decode(f)
	require.NoError(t, err)
	r := modelSize(sd)
	v, _, err := imageio.ToCHW(img, r, r)
	require.NoError(t, err)
	return be.Upload([]int{1, 3, r, r}, v)
}

// toImage turns [1, 3, H, W] in [0, 1] into an image, rounding as the
// CLI does.
func toImage(t *testing.T, be nn.Backend, x *nn.Tensor) *image.NRGBA {
	v, err := be.Read(x)
	require.NoError(t, err)
	for i := range v {
		v[i] = v[i]*2 - 1
	}
	img, err := imageio.FromCHW(v, x.Dim(3), x.Dim(2))
	require.NoError(t, err)
	return img
}

// rgbaImage wraps page RGBA bytes.
func rgbaImage(w, h int, pix []int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i, p := range pix {
		img.Pix[i] = uint8(p)
	}
	return img
}

// diff compares two images' RGB channels: max and mean absolute difference
// in 0–255 levels.
func diff(a, b image.Image) (maxAbs, meanAbs float64) {
	ab := a.Bounds()
	n := 0
	for y := ab.Min.Y; y < ab.Max.Y; y++ {
		for x := ab.Min.X; x < ab.Max.X; x++ {
			c1 := color.NRGBAModel.Convert(a.At(x, y)).(color.NRGBA)
			c2 := color.NRGBAModel.Convert(b.At(x-ab.Min.X+b.Bounds().Min.X, y-ab.Min.Y+b.Bounds().Min.Y)).(color.NRGBA)
			for _, d := range []float64{float64(c1.R) - float64(c2.R), float64(c1.G) - float64(c2.G), float64(c1.B) - float64(c2.B)} {
				d = math.Abs(d)
				maxAbs = math.Max(maxAbs, d)
				meanAbs += d
				n++
			}
		}
	}
	return maxAbs, meanAbs / float64(n)
}

func savePNG(t *testing.T, path string, img image.Image) {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

// testImage returns the real test photo (../shared/fixtures/taesd_real/
// astronaut_256.png); without the shared fixtures (outside CI) it writes a
// synthetic 96×64 picture instead.
func testImage(t *testing.T, root, dir string) string {
	p := filepath.Join(root, "..", "shared", "fixtures", "taesd_real", "astronaut_256.png")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("test image %s not found", p)
	}
	img := image.NewNRGBA(image.Rect(0, 0, 96, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 96; x++ {
			c := color.NRGBA{uint8(x * 255 / 95), uint8(y * 255 / 63), 128, 255}
			if (x-48)*(x-48)+(y-32)*(y-32) < 300 {
				c = color.NRGBA{240, 200, 40, 255}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	out := filepath.Join(dir, "synthetic.png")
	savePNG(t, out, img)
	return out
}

// hugePNG writes a valid PNG header for a w×h image with almost no pixel
// data: decoders that check the size first reject it without allocating.
func hugePNG(t *testing.T, path string, w, h uint32) {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(data)))
		buf.Write(n[:])
		c := crc32.NewIEEE()
		c.Write([]byte(typ))
		c.Write(data)
		buf.WriteString(typ)
		buf.Write(data)
		binary.BigEndian.PutUint32(n[:], c.Sum32())
		buf.Write(n[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk("IHDR", ihdr)
	chunk("IDAT", []byte{0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01})
	chunk("IEND", nil)
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
}

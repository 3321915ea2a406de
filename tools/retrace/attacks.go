//go:build !js

package main

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// Attacks of the watermark benchmark (docs/WATERMARK.md), the set of the
// Tree-Ring paper (Wen et al. 2023, §4.1) at the strengths the issue fixes.
// Each maps an 8-bit image to an 8-bit image of the same size; index is the
// image's number in the benchmark (noise seed, brightness sign), so a run is
// reproducible.
type attack struct {
	Name string
	Desc string
	Fn   func(img *image.NRGBA, index int) (*image.NRGBA, error)
}

var watermarkAttacks = []attack{
	{"none", "no attack", func(img *image.NRGBA, _ int) (*image.NRGBA, error) { return img, nil }},
	{"jpeg75", "JPEG quality 75 (Go's image/jpeg, 4:2:0)", func(img *image.NRGBA, _ int) (*image.NRGBA, error) { return attackJPEG(img, 75) }},
	{"crop90", "centre crop to 90% of each side, bilinear resize back", func(img *image.NRGBA, _ int) (*image.NRGBA, error) { return attackCropResize(img, 0.9), nil }},
	{"blur1", "Gaussian blur σ = 1 px (PIL GaussianBlur radius 1)", func(img *image.NRGBA, _ int) (*image.NRGBA, error) { return attackBlur(img, 1), nil }},
	{"noise005", "additive Gaussian noise σ = 0.05 of the [0, 1] range", func(img *image.NRGBA, i int) (*image.NRGBA, error) {
		return attackNoise(img, 0.05, uint64(i)), nil
	}},
	{"bright20", "brightness × 1.2 (even images) or × 0.8 (odd), clamped", func(img *image.NRGBA, i int) (*image.NRGBA, error) {
		f := 1.2
		if i%2 == 1 {
			f = 0.8
		}
		return attackBrightness(img, f), nil
	}},
	{"rot10", "rotation by 10° about the centre, bilinear, black corners", func(img *image.NRGBA, _ int) (*image.NRGBA, error) { return attackRotate(img, 10), nil }},
}

// attackByName finds an attack.
func attackByName(name string) (attack, error) {
	for _, a := range watermarkAttacks {
		if a.Name == name {
			return a, nil
		}
	}
	names := make([]string, len(watermarkAttacks))
	for i, a := range watermarkAttacks {
		names[i] = a.Name
	}
	return attack{}, fmt.Errorf("unknown attack %q (want one of %v)", name, names)
}

// toNRGBA copies any image into an NRGBA with origin (0, 0).
func toNRGBA(img image.Image) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Bounds(), img, b.Min, draw.Src)
	return out
}

func attackJPEG(img *image.NRGBA, q int) (*image.NRGBA, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, fmt.Errorf("jpeg attack: %w", err)
	}
	dec, err := jpeg.Decode(&buf)
	if err != nil {
		return nil, fmt.Errorf("jpeg attack: %w", err)
	}
	return toNRGBA(dec), nil
}

// sampleBilinear reads channel ch of img at the continuous pixel position
// (x, y) (pixel centres at integers), outside the image reading 0.
func sampleBilinear(img *image.NRGBA, x, y float64, ch int) float64 {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	x0, y0 := math.Floor(x), math.Floor(y)
	fx, fy := x-x0, y-y0
	at := func(xi, yi int) float64 {
		if xi < 0 || yi < 0 || xi >= w || yi >= h {
			return 0
		}
		return float64(img.Pix[yi*img.Stride+xi*4+ch])
	}
	ix, iy := int(x0), int(y0)
	return (1-fy)*((1-fx)*at(ix, iy)+fx*at(ix+1, iy)) + fy*((1-fx)*at(ix, iy+1)+fx*at(ix+1, iy+1))
}

func clamp8(v float64) uint8 { return uint8(math.Min(math.Max(math.Round(v), 0), 255)) }

// attackCropResize keeps the centre frac×frac of the image and resizes it
// back to the full size (bilinear, sample positions clamped to the crop).
func attackCropResize(img *image.NRGBA, frac float64) *image.NRGBA {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	cw, ch := max(int(math.Round(float64(w)*frac)), 1), max(int(math.Round(float64(h)*frac)), 1)
	ox, oy := (w-cw)/2, (h-ch)/2
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		sy := math.Min(math.Max((float64(y)+0.5)*float64(ch)/float64(h)-0.5, 0), float64(ch-1)) + float64(oy)
		for x := 0; x < w; x++ {
			sx := math.Min(math.Max((float64(x)+0.5)*float64(cw)/float64(w)-0.5, 0), float64(cw-1)) + float64(ox)
			for c := 0; c < 3; c++ {
				out.Pix[y*out.Stride+x*4+c] = clamp8(sampleBilinear(img, sx, sy, c))
			}
			out.Pix[y*out.Stride+x*4+3] = 255
		}
	}
	return out
}

// attackBlur is a separable Gaussian blur (radius ⌈3σ⌉, edges clamped).
func attackBlur(img *image.NRGBA, sigma float64) *image.NRGBA {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	var sum float64
	for i := range k {
		d := float64(i - r)
		k[i] = math.Exp(-d * d / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	tmp := make([]float64, w*h*3)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				var s float64
				for i, kv := range k {
					xx := min(max(x+i-r, 0), w-1)
					s += kv * float64(img.Pix[y*img.Stride+xx*4+c])
				}
				tmp[(y*w+x)*3+c] = s
			}
		}
	}
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				var s float64
				for i, kv := range k {
					yy := min(max(y+i-r, 0), h-1)
					s += kv * tmp[(yy*w+x)*3+c]
				}
				out.Pix[y*out.Stride+x*4+c] = clamp8(s)
			}
			out.Pix[y*out.Stride+x*4+3] = 255
		}
	}
	return out
}

// attackNoise adds N(0, σ²) (σ in [0, 1] units) to every channel; gray
// images (R = G = B) get the same noise in all three so they stay gray.
func attackNoise(img *image.NRGBA, sigma float64, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := image.NewNRGBA(img.Rect)
	copy(out.Pix, img.Pix)
	for i := 0; i+3 < len(out.Pix); i += 4 {
		p := out.Pix[i : i+4]
		gray := p[0] == p[1] && p[1] == p[2]
		n := rng.NormFloat64() * sigma * 255
		for c := 0; c < 3; c++ {
			if c > 0 && !gray {
				n = rng.NormFloat64() * sigma * 255
			}
			p[c] = clamp8(float64(p[c]) + n)
		}
	}
	return out
}

// attackBrightness multiplies every channel by f (PIL's
// ImageEnhance.Brightness: a blend with black), clamped to 255.
func attackBrightness(img *image.NRGBA, f float64) *image.NRGBA {
	out := image.NewNRGBA(img.Rect)
	copy(out.Pix, img.Pix)
	for i := 0; i+3 < len(out.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			out.Pix[i+c] = clamp8(float64(out.Pix[i+c]) * f)
		}
	}
	return out
}

// attackRotate rotates by deg degrees counter-clockwise about the centre,
// same size, bilinear, black outside (torchvision's rotate as the Tree-Ring
// code uses it).
func attackRotate(img *image.NRGBA, deg float64) *image.NRGBA {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	th := deg * math.Pi / 180
	cs, sn := math.Cos(th), math.Sin(th)
	cx, cy := float64(w-1)/2, float64(h-1)/2
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Inverse map: the source of output pixel (x, y).
			dx, dy := float64(x)-cx, float64(y)-cy
			sx := cs*dx - sn*dy + cx
			sy := sn*dx + cs*dy + cy
			for c := 0; c < 3; c++ {
				out.Pix[y*out.Stride+x*4+c] = clamp8(sampleBilinear(img, sx, sy, c))
			}
			out.Pix[y*out.Stride+x*4+3] = 255
		}
	}
	return out
}

// lumaOf returns the mean of R, G, B of every pixel in [0, 1].
func lumaOf(img *image.NRGBA) []float64 {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	out := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := img.Pix[y*img.Stride+x*4:]
			out[y*w+x] = (float64(p[0]) + float64(p[1]) + float64(p[2])) / (3 * 255)
		}
	}
	return out
}

// grayNRGBA builds an opaque gray NRGBA from values in [0, 1].
func grayNRGBA(v []float64, w, h int) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i, g := range v {
		c := clamp8(g * 255)
		out.SetNRGBA(i%w, i/w, color.NRGBA{c, c, c, 255})
	}
	return out
}

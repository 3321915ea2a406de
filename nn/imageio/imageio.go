// Package imageio converts between image files (PNG, JPEG) and the float
// CHW arrays the models take, with the checks a user-facing tool needs:
// a size limit checked before decoding, clear format errors, and a
// centre-crop-and-resize to the model's resolution that reports the crop.
package imageio

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"strings"
)

// MaxPixels is the largest image (width × height) Decode accepts:
// decoding is refused before pixel memory is allocated.
const MaxPixels = 64 << 20

// ErrTooLarge is returned for images above MaxPixels.
var ErrTooLarge = errors.New("imageio: image too large")

// Decode reads a PNG or JPEG. The header is checked first so a huge or
// broken file fails with a clear error instead of exhausting memory.
func Decode(r io.Reader) (image.Image, string, error) {
	data, err := io.ReadAll(io.LimitReader(r, 512<<20))
	if err != nil {
		return nil, "", fmt.Errorf("imageio: reading: %w", err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("imageio: not a PNG or JPEG image (%v)", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, "", fmt.Errorf("imageio: %s image has size %d×%d", format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, "", fmt.Errorf("%w: %s of %d×%d pixels (limit %d megapixels)", ErrTooLarge, format, cfg.Width, cfg.Height, MaxPixels>>20)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, "", fmt.Errorf("imageio: decoding %s: %w", format, err)
	}
	return img, format, nil
}

// Crop is the source rectangle CenterCrop used.
type Crop = image.Rectangle

// CenterCrop returns the largest centred rectangle of b with aspect w:h.
func CenterCrop(b image.Rectangle, w, h int) image.Rectangle {
	bw, bh := b.Dx(), b.Dy()
	cw, ch := bw, bw*h/w
	if ch > bh {
		ch, cw = bh, bh*w/h
	}
	x0 := b.Min.X + (bw-cw)/2
	y0 := b.Min.Y + (bh-ch)/2
	return image.Rect(x0, y0, x0+cw, y0+ch)
}

// ToCHW centre-crops img to the aspect of w×h, resizes it with an area
// filter (box averaging of the covered source pixels, which is what
// downscaling needs; bilinear when upscaling) and returns [3, h, w]
// values in [−1, 1] plus the crop rectangle used.
func ToCHW(img image.Image, w, h int) ([]float32, image.Rectangle, error) {
	if w <= 0 || h <= 0 {
		return nil, image.Rectangle{}, fmt.Errorf("imageio: target size %d×%d", w, h)
	}
	crop := CenterCrop(img.Bounds(), w, h)
	if crop.Empty() {
		return nil, crop, fmt.Errorf("imageio: image %v is too small to crop to %d:%d", img.Bounds(), w, h)
	}
	src := toRGB(img, crop)
	sw, sh := crop.Dx(), crop.Dy()
	out := make([]float32, 3*w*h)
	sx, sy := float64(sw)/float64(w), float64(sh)/float64(h)
	for y := 0; y < h; y++ {
		y0, y1 := float64(y)*sy, float64(y+1)*sy
		for x := 0; x < w; x++ {
			x0, x1 := float64(x)*sx, float64(x+1)*sx
			var acc [3]float64
			if sx <= 1 && sy <= 1 {
				// upscaling: bilinear at the pixel centre
				cx, cy := (x0+x1)/2-0.5, (y0+y1)/2-0.5
				acc = bilinear(src, sw, sh, cx, cy)
			} else {
				var wsum float64
				for yy := int(y0); yy < int(math.Ceil(y1)) && yy < sh; yy++ {
					wy := math.Min(y1, float64(yy+1)) - math.Max(y0, float64(yy))
					for xx := int(x0); xx < int(math.Ceil(x1)) && xx < sw; xx++ {
						wx := math.Min(x1, float64(xx+1)) - math.Max(x0, float64(xx))
						wgt := wx * wy
						p := src[(yy*sw+xx)*3:]
						acc[0] += wgt * p[0]
						acc[1] += wgt * p[1]
						acc[2] += wgt * p[2]
						wsum += wgt
					}
				}
				for c := range acc {
					acc[c] /= wsum
				}
			}
			for c := 0; c < 3; c++ {
				out[(c*h+y)*w+x] = float32(acc[c]/127.5 - 1)
			}
		}
	}
	return out, crop, nil
}

func bilinear(src []float64, w, h int, x, y float64) [3]float64 {
	x = math.Max(0, math.Min(x, float64(w-1)))
	y = math.Max(0, math.Min(y, float64(h-1)))
	x0, y0 := int(x), int(y)
	x1, y1 := min(x0+1, w-1), min(y0+1, h-1)
	fx, fy := x-float64(x0), y-float64(y0)
	var out [3]float64
	for c := 0; c < 3; c++ {
		a := src[(y0*w+x0)*3+c]*(1-fx) + src[(y0*w+x1)*3+c]*fx
		b := src[(y1*w+x0)*3+c]*(1-fx) + src[(y1*w+x1)*3+c]*fx
		out[c] = a*(1-fy) + b*fy
	}
	return out
}

func toRGB(img image.Image, r image.Rectangle) []float64 {
	out := make([]float64, 0, r.Dx()*r.Dy()*3)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			// Composite transparency over white, as browsers show it.
			a := float64(c.A) / 255
			out = append(out, float64(c.R)*a+255*(1-a), float64(c.G)*a+255*(1-a), float64(c.B)*a+255*(1-a))
		}
	}
	return out
}

// FromCHW turns [3, h, w] values in [−1, 1] (clamped) into an image.
// NaN values are an error: they mean the model diverged, and silently
// writing them as black would hide it.
func FromCHW(v []float32, w, h int) (*image.NRGBA, error) {
	if len(v) != 3*w*h {
		return nil, fmt.Errorf("imageio: %d values for a 3×%d×%d image", len(v), h, w)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("imageio: pixel value %d is %v (the model output is not finite)", i, x)
		}
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var px [3]uint8
			for c := 0; c < 3; c++ {
				f := (float64(v[(c*h+y)*w+x]) + 1) * 127.5
				px[c] = uint8(math.Max(0, math.Min(255, math.Round(f))))
			}
			img.SetNRGBA(x, y, color.NRGBA{px[0], px[1], px[2], 255})
		}
	}
	return img, nil
}

// Encode writes img as PNG or JPEG (quality 95), chosen by the file name's
// extension.
func Encode(w io.Writer, img image.Image, name string) error {
	switch n := strings.ToLower(name); {
	case strings.HasSuffix(n, ".jpg"), strings.HasSuffix(n, ".jpeg"):
		return jpeg.Encode(w, img, &jpeg.Options{Quality: 95})
	case strings.HasSuffix(n, ".png"):
		return png.Encode(w, img)
	}
	return fmt.Errorf("imageio: %s: unknown image type (use .png or .jpg)", name)
}

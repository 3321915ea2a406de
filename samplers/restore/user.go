package restore

import (
	"errors"
	"fmt"
	"image"

	"retrace/nn"
	"retrace/nn/imageio"
	"retrace/samplers"
)

// ErrLatentModel is returned by PipelinePrior for a pipeline with a VAE:
// the solvers work on pixels, not latents.
var ErrLatentModel = errors.New("it is a latent-space pipeline (it has a VAE); the restore solvers need a pixel-space model")

// ErrEmptyMask is returned by UserMask for a mask with no painted pixel.
var ErrEmptyMask = errors.New("mask is empty: paint the region to fill")

// PipelinePrior is the prior of a pixel-space pipeline (a pack or
// diffusers pipeline folder whose VAE is absent): its conditional UNet run
// with prompt's embedding (a class-conditional model's "" is its null
// class) and no guidance, with the pipeline scheduler's noise schedule.
// free releases the prompt embedding (the pipeline stays the caller's).
// name labels errors (a path or a model name).
func PipelinePrior(be nn.Backend, sd *samplers.StableDiffusion, prompt, name string) (Prior, func(), error) {
	if sd == nil || sd.UNet == nil {
		return Prior{}, nil, fmt.Errorf("restore: %s: no pipeline", name)
	}
	if sd.VAE != nil {
		return Prior{}, nil, fmt.Errorf("restore: %s: %w", name, ErrLatentModel)
	}
	cond, err := sd.EncodePrompt(be, prompt)
	if err != nil {
		return Prior{}, nil, err
	}
	p := Prior{Eps: samplers.CondUNetEps(sd.UNet, cond, nil, 1), Config: sd.SchedulerConfigOf()}
	return p, func() { nn.Free(cond) }, nil
}

// UserMask reads a user-painted inpainting mask (light, luminance ≥ ½ =
// a hole to fill; dark or transparent = keep) for a picture of picW×picH
// pixels and returns the known-pixel mask at the model's w×h (1 known, 0
// hole). The mask must have either the picture's size — it then gets the
// picture's own centre crop and area resize (imageio.ToCHW), a pixel being
// a hole when its resized luminance is ≥ ½ — or exactly the model's w×h
// (painted on the cropped, resized picture). Any other size is an error
// naming the sizes; a mask without a hole is ErrEmptyMask.
func UserMask(mask image.Image, picW, picH, w, h int) ([]float32, error) {
	mb := mask.Bounds()
	var known []float32
	var err error
	switch {
	case mb.Dx() == w && mb.Dy() == h:
		known, err = MaskFromImage(mask, w, h)
	case mb.Dx() == picW && mb.Dy() == picH:
		var v []float32
		if v, _, err = imageio.ToCHW(premultiplied(mask), w, h); err == nil {
			known = make([]float32, h*w)
			for i := range known {
				if (0.299*v[i]+0.587*v[h*w+i]+0.114*v[2*h*w+i])/2+0.5 < 0.5 {
					known[i] = 1
				}
			}
		}
	default:
		return nil, fmt.Errorf("restore: mask is %d×%d, the image is %d×%d (the mask must have the image's size, or the model's %d×%d)", mb.Dx(), mb.Dy(), picW, picH, w, h)
	}
	if err != nil {
		return nil, err
	}
	for _, k := range known {
		if k == 0 {
			return known, nil
		}
	}
	return nil, fmt.Errorf("restore: %w (the %d×%d mask has no light pixel)", ErrEmptyMask, mb.Dx(), mb.Dy())
}

// premultiplied returns img with transparency folded into the colour (a
// transparent pixel reads black, as in MaskFromImage), for converters
// that ignore alpha.
func premultiplied(img image.Image) image.Image {
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		return img
	}
	b := img.Bounds()
	out := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA() // premultiplied
			i := out.PixOffset(x, y)
			out.Pix[i], out.Pix[i+1], out.Pix[i+2], out.Pix[i+3] = uint8(r>>8), uint8(g>>8), uint8(bl>>8), 255
		}
	}
	return out
}

// SolversFor lists the solvers (in Solvers' order) that Supports accepts
// for a task with measurement noise σ_y, without building the operator
// (nil for an unknown task).
func SolversFor(task string, sigmaY float64) []string {
	var op Operator
	switch task {
	case "inpaint":
		op = &Inpaint{}
	case "sr2":
		op = &SuperRes{s: 2}
	case "sr4":
		op = &SuperRes{s: 4}
	case "deblur":
		op = &Blur{}
	case "denoise":
		op = Denoise{}
	case "colorize":
		op = &Colorize{}
	default:
		return nil
	}
	var out []string
	for _, s := range Solvers {
		if Supports(s, op, sigmaY) == nil {
			out = append(out, s)
		}
	}
	return out
}

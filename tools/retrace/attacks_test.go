//go:build !js

package main

import (
	"image"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// testPicture is a gray gradient with a bright square, odd size.
func testPicture(w, h int) *image.NRGBA {
	v := make([]float64, w*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v[y*w+x] = float64(x+y) / float64(w+h)
			if x > w/3 && x < 2*w/3 && y > h/3 && y < 2*h/3 {
				v[y*w+x] = 0.9
			}
		}
	}
	return grayNRGBA(v, w, h)
}

func TestAttacksKeepSizeAndChange(t *testing.T) {
	img := testPicture(33, 29)
	for _, a := range watermarkAttacks {
		t.Run(a.Name, func(t *testing.T) {
			out, err := a.Fn(img, 0)
			require.NoError(t, err)
			require.Equal(t, img.Rect, out.Rect)
			d := 0.0
			for i, p := range lumaOf(out) {
				d = math.Max(d, math.Abs(p-lumaOf(img)[i]))
			}
			if a.Name == "none" {
				require.Zero(t, d)
			} else {
				require.Greater(t, d, 1.0/255, "the attack changes the image")
			}
			again, err := a.Fn(img, 0)
			require.NoError(t, err)
			require.Equal(t, out.Pix, again.Pix, "deterministic")
		})
	}
	_, err := attackByName("nope")
	require.ErrorContains(t, err, "unknown attack")
}

func TestAttackDefinitions(t *testing.T) {
	flat := grayNRGBA(func() []float64 {
		v := make([]float64, 15*15)
		for i := range v {
			v[i] = 0.5
		}
		return v
	}(), 15, 15)
	// A blur and a crop-resize keep a constant image constant.
	for _, out := range []*image.NRGBA{attackBlur(flat, 1), attackCropResize(flat, 0.9)} {
		for _, g := range lumaOf(out) {
			require.InDelta(t, 128.0/255, g, 0.5/255)
		}
	}
	// Rotating by 0 is the identity; by 10° it blackens the corners.
	img := testPicture(21, 21)
	require.Equal(t, img.Pix, attackRotate(img, 0).Pix)
	r := attackRotate(flat, 10)
	require.Zero(t, r.Pix[0], "corner outside the rotated image is black")
	require.Equal(t, flat.Pix[7*flat.Stride+7*4], r.Pix[7*r.Stride+7*4], "centre kept")
	// Brightness scales and clamps.
	b := attackBrightness(flat, 1.2)
	require.Equal(t, uint8(154), b.Pix[0]) // round(128·1.2)
	require.Equal(t, uint8(255), attackBrightness(grayNRGBA([]float64{1}, 1, 1), 1.2).Pix[0])
	// Noise of σ = 0.05 has about that standard deviation, gray stays gray.
	n := attackNoise(flat, 0.05, 3)
	var s2 float64
	for i, g := range lumaOf(n) {
		d := g - lumaOf(flat)[i]
		s2 += d * d
		p := n.Pix[i*4 : i*4+3]
		require.True(t, p[0] == p[1] && p[1] == p[2])
	}
	require.InDelta(t, 0.05, math.Sqrt(s2/float64(15*15)), 0.01)
}

package restore

import (
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"
)

// A user mask of the model's size is read as is; one of the picture's
// size gets the picture's centre crop and resize; other sizes and empty
// masks are errors that say so.
func TestUserMask(t *testing.T) {
	paint := func(w, h int, hole image.Rectangle) *image.NRGBA {
		m := image.NewNRGBA(image.Rect(0, 0, w, h)) // transparent: keep
		for y := hole.Min.Y; y < hole.Max.Y; y++ {
			for x := hole.Min.X; x < hole.Max.X; x++ {
				m.SetNRGBA(x, y, color.NRGBA{255, 255, 255, 255})
			}
		}
		return m
	}
	// model size 4×4
	k, err := UserMask(paint(4, 4, image.Rect(1, 1, 3, 2)), 40, 20, 4, 4)
	require.NoError(t, err)
	want := []float32{1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	require.Equal(t, want, k)
	// picture size 40×20: the centre 20×20 square (x 10…30) → 4×4, 5 px per cell
	k, err = UserMask(paint(40, 20, image.Rect(15, 5, 25, 10)), 40, 20, 4, 4)
	require.NoError(t, err)
	require.Equal(t, want, k)
	// painting outside the crop is not a hole
	_, err = UserMask(paint(40, 20, image.Rect(0, 0, 8, 20)), 40, 20, 4, 4)
	require.ErrorIs(t, err, ErrEmptyMask)
	_, err = UserMask(paint(4, 4, image.Rectangle{}), 40, 20, 4, 4)
	require.ErrorIs(t, err, ErrEmptyMask)
	require.ErrorContains(t, err, "mask is empty: paint the region to fill")
	_, err = UserMask(paint(7, 5, image.Rect(0, 0, 7, 5)), 40, 20, 4, 4)
	require.ErrorContains(t, err, "mask is 7×5, the image is 40×20")
	require.ErrorContains(t, err, "4×4")
}

func TestSolversFor(t *testing.T) {
	require.Equal(t, []string{"pinv", "ddim", "ddnm", "dds", "reddiff", "sde"}, SolversFor("inpaint", 0))
	require.Equal(t, []string{"pinv", "ddim", "dds", "reddiff"}, SolversFor("deblur", 0))
	require.NotContains(t, SolversFor("sr4", 0), "sde")
	require.NotContains(t, SolversFor("inpaint", 0.2), "sde")
	require.Nil(t, SolversFor("paint", 0))
}

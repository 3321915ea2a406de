package imageio

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func TestRoundTripAndCrop(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 40, 20))
	for y := 0; y < 20; y++ {
		for x := 0; x < 40; x++ {
			img.SetNRGBA(x, y, color.NRGBA{uint8(x * 6), uint8(y * 12), 77, 255})
		}
	}
	dec, format, err := Decode(bytes.NewReader(encodePNG(t, img)))
	require.NoError(t, err)
	require.Equal(t, "png", format)
	v, crop, err := ToCHW(dec, 20, 20)
	require.NoError(t, err)
	require.Equal(t, image.Rect(10, 0, 30, 20), crop, "centre square crop")
	out, err := FromCHW(v, 20, 20)
	require.NoError(t, err)
	for y := 0; y < 20; y++ {
		for x := 0; x < 20; x++ {
			require.Equal(t, img.NRGBAAt(x+10, y), out.NRGBAAt(x, y))
		}
	}
	// Downscaling averages: a 2×2 box becomes its mean.
	v, _, err = ToCHW(dec, 2, 1)
	require.NoError(t, err)
	require.Len(t, v, 6)
}

func TestDecodeErrors(t *testing.T) {
	_, _, err := Decode(bytes.NewReader([]byte("not an image")))
	require.ErrorContains(t, err, "not a PNG or JPEG")
	// A PNG header claiming 100000×100000 pixels is refused before decoding.
	var b bytes.Buffer
	b.Write([]byte("\x89PNG\r\n\x1a\n"))
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], 100000)
	binary.BigEndian.PutUint32(ihdr[4:], 100000)
	ihdr[8], ihdr[9] = 8, 2
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write([]byte("IHDR"))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte("IHDR"), ihdr...)))
	_, _, err = Decode(&b)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = FromCHW([]float32{0, 0, 0}, 2, 2)
	require.ErrorContains(t, err, "3 values for a 3×2×2 image")
	nan := []float32{0, 0, float32(nanf())}
	_, err = FromCHW(nan, 1, 1)
	require.ErrorContains(t, err, "not finite")
	require.ErrorContains(t, Encode(&b, image.NewNRGBA(image.Rect(0, 0, 1, 1)), "x.gif"), "unknown image type")
}

func nanf() float64 { z := 0.0; return z / z }

func FuzzDecode(f *testing.F) {
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	f.Add(encodePNG(f, img))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{0xff, 0xd8, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		img, _, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		b := img.Bounds()
		if b.Dx() > 64 || b.Dy() > 64 {
			return
		}
		v, _, err := ToCHW(img, 8, 8)
		if err != nil {
			return
		}
		_, err = FromCHW(v, 8, 8)
		require.NoError(t, err)
	})
}

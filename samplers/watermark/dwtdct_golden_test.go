package watermark

import (
	"encoding/json"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/golden"
	"retrace/nn/imageio"
	"retrace/nn/safetensors"
)

type dwtDctFixture struct {
	Cases []struct {
		Image    string `json:"image"`
		Unmarked string `json:"unmarked_png"`
		Payloads map[string]struct {
			Marked  string `json:"marked_png"`
			Decodes map[string]struct {
				File string `json:"file"`
			} `json:"decodes"`
		} `json:"payloads"`
	} `json:"cases"`
	Payloads map[string]struct {
		Bits  []int  `json:"bits"`
		Bytes string `json:"bytes"`
		Type  string `json:"type"`
	} `json:"payloads"`
}

func readPNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, _, err := imageio.Decode(f)
	require.NoError(t, err, path)
	return img
}

func f64(t testing.TB, io *safetensors.File, name string) []float64 {
	t.Helper()
	v, err := io.Float64(name)
	require.NoError(t, err, name)
	return v
}

func ints(t testing.TB, io *safetensors.File, name string) []bool {
	t.Helper()
	_, v := golden.Ints(t, io, name)
	out := make([]bool, len(v))
	for i, x := range v {
		out[i] = x != 0
	}
	return out
}

func u8(t testing.TB, io *safetensors.File, name string) []uint8 {
	t.Helper()
	raw, err := io.Raw(name)
	require.NoError(t, err, name)
	return raw
}

// decodeFile is the file the library decoded for a decode kind: the PNG
// itself, or for a JPEG the pixels cv2.imread produced (*.cv2decoded.png),
// since JPEG decoders differ.
func decodeFile(file string) string {
	if ext := filepath.Ext(file); ext == ".jpg" || ext == ".jpeg" {
		return strings.TrimSuffix(file, ext) + ".cv2decoded.png"
	}
	return file
}

// TestGoldenDwtDct: every marked PNG of the fixture is reproduced byte for
// byte from the unmarked photo, and every decode (marked, JPEG
// recompressions, unmarked) gives the library's bits and vote means exactly.
func TestGoldenDwtDct(t *testing.T) {
	dir, io := golden.Open(t, "dwtdct")
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var fx dwtDctFixture
	require.NoError(t, json.Unmarshal(b, &fx))
	require.NotEmpty(t, fx.Cases)
	for _, cs := range fx.Cases {
		orig := readPNG(t, filepath.Join(dir, cs.Unmarked))
		names := make([]string, 0, len(cs.Payloads))
		for p := range cs.Payloads {
			names = append(names, p)
		}
		sort.Strings(names)
		for _, p := range names {
			pl := cs.Payloads[p]
			t.Run(cs.Image+"/"+p, func(t *testing.T) {
				key := cs.Image + "." + p
				bits := ints(t, io, key+".payload")
				if def, ok := fx.Payloads[p]; ok && def.Type == "bytes" {
					require.Equal(t, bits, BitsFromString(def.Bytes), "bytes payload, MSB first")
				}
				marked, err := EmbedDwtDct(orig, bits)
				require.NoError(t, err)
				want := toRGB8(readPNG(t, filepath.Join(dir, pl.Marked)))
				got := toRGB8(marked)
				diff := 0
				for i := range want.pix {
					if want.pix[i] != got.pix[i] {
						diff++
					}
				}
				require.Zero(t, diff, "%s: %d of %d bytes differ", pl.Marked, diff, len(want.pix))
				kinds := make([]string, 0, len(pl.Decodes))
				for k := range pl.Decodes {
					kinds = append(kinds, k)
				}
				sort.Strings(kinds)
				for _, k := range kinds {
					file := decodeFile(pl.Decodes[k].File)
					gb, gv, err := DecodeDwtDct(readPNG(t, filepath.Join(dir, file)), len(bits))
					require.NoError(t, err)
					require.Equal(t, ints(t, io, key+".decoded."+k), gb, "%s bits", file)
					require.Equal(t, f64(t, io, key+".votes."+k), gv, "%s vote means", file)
				}
			})
		}
		t.Run(cs.Image+"/unmarked", func(t *testing.T) {
			prefix := cs.Image + ".unmarked.decoded_bits"
			found := 0
			for _, name := range io.Names() {
				if !strings.HasPrefix(name, prefix) {
					continue
				}
				n := strings.TrimPrefix(name, prefix)
				want := ints(t, io, name)
				gb, gv, err := DecodeDwtDct(orig, len(want))
				require.NoError(t, err)
				require.Equal(t, want, gb, "unmarked, %s bits", n)
				require.Equal(t, f64(t, io, cs.Image+".unmarked.votes"+n), gv, "unmarked, %s vote means", n)
				found++
			}
			require.NotZero(t, found, "no %s* keys", prefix)
		})
	}
}

// TestGoldenDwtDctIntermediates checks each step against the library's
// intermediates (dbg.*) where the fixture has them: YUV, the Haar band
// before and after embedding, the inverse DWT and the truncating store.
func TestGoldenDwtDctIntermediates(t *testing.T) {
	dir, io := golden.Open(t, "dwtdct")
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var fx dwtDctFixture
	require.NoError(t, json.Unmarshal(b, &fx))
	checked := 0
	for _, cs := range fx.Cases {
		for p := range cs.Payloads {
			key := fmt.Sprintf("dbg.%s.%s.", cs.Image, p)
			if _, ok := io.Info(key + "yuv_in"); !ok {
				continue
			}
			m := toRGB8(readPNG(t, filepath.Join(dir, cs.Unmarked)))
			_, dbg := embedDwtDct(m, ints(t, io, cs.Image+"."+p+".payload"))
			yuv := u8(t, io, key+"yuv_in")
			for i := range dbg.ys {
				require.Equal(t, yuv[3*i:3*i+3], []uint8{dbg.ys[i], dbg.us[i], dbg.vs[i]}, "yuv pixel %d", i)
			}
			require.Equal(t, f64(t, io, key+"ca1_in"), dbg.ca1In, "dwt2 approximation band")
			require.Equal(t, f64(t, io, key+"ca1_marked"), dbg.ca1Marked, "embedded band")
			require.Equal(t, f64(t, io, key+"u_idwt"), dbg.uIdwt, "idwt2 with swapped details")
			ym := u8(t, io, key+"yuv_marked")
			for i := range dbg.usMarked {
				require.Equal(t, ym[3*i+1], dbg.usMarked[i], "stored U pixel %d (from %v)", i, dbg.uIdwt[i])
			}
			checked++
		}
	}
	require.NotZero(t, checked, "the fixture has no dbg intermediates")
}

func TestDwtDctRoundTripAndErrors(t *testing.T) {
	// A synthetic 262×256 textured image (width not a multiple of 4)
	// carries a 48-bit payload. (Smooth gradients do not: the largest
	// coefficient of a flat block moves after the uint8 store, in the
	// library as here.)
	img := image.NewRGBA(image.Rect(0, 0, 262, 256))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range img.Pix {
		img.Pix[i] = uint8(64 + r.IntN(128))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	bits, err := ParseBits("0b101100111110110010010000011110111011000110011110")
	require.NoError(t, err)
	marked, err := EmbedDwtDct(img, bits)
	require.NoError(t, err)
	got, votes, err := DecodeDwtDct(marked, len(bits))
	require.NoError(t, err)
	require.Equal(t, FormatBits(bits), FormatBits(got))
	require.Len(t, votes, len(bits))
	_, err = EmbedDwtDct(image.NewRGBA(image.Rect(0, 0, 255, 256)), bits)
	require.ErrorContains(t, err, "too small")
	_, _, err = DecodeDwtDct(img, 0)
	require.ErrorContains(t, err, "no payload bits")
	_, err = ParseBits("01x")
	require.ErrorContains(t, err, `'x' at position 2`)
	require.Equal(t, []byte("test"), BytesFromBits(BitsFromString("test")))
	require.Equal(t, []byte{0xa0}, BytesFromBits([]bool{true, false, true}))
}

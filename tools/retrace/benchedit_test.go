//go:build !js

package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// idxBytes builds an IDX file of unsigned bytes.
func idxBytes(dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 0x08, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gzipBytes(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write(p)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

func TestIDXRead(t *testing.T) {
	data := make([]byte, 2*3*4)
	for i := range data {
		data[i] = byte(i * 7)
	}
	raw := idxBytes([]int{2, 3, 4}, data)
	for name, in := range map[string][]byte{"raw": raw, "gzip": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			a, err := readIDX(bytes.NewReader(in))
			require.NoError(t, err)
			require.Equal(t, []int{2, 3, 4}, a.Dims)
			require.Equal(t, data, a.Data)
		})
	}
	labels, err := readIDX(bytes.NewReader(idxBytes([]int{3}, []byte{9, 0, 5})))
	require.NoError(t, err)
	require.Equal(t, []byte{9, 0, 5}, labels.Data)
}

func TestIDXErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "idx: header"},
		{"magic", []byte{1, 2, 8, 1, 0, 0, 0, 1, 0}, "not an IDX file"},
		{"type", []byte{0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "element type 0x0d"},
		{"no dims", []byte{0, 0, 8, 0}, "0 dimensions"},
		{"short dims", []byte{0, 0, 8, 2, 0, 0, 0, 1}, "size of dimension 1 of 2"},
		{"short data", idxBytes([]int{2, 3}, []byte{1, 2, 3}), "wants 6 bytes of data, file has 3"},
		{"huge", []byte{0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2}, "more than"},
		{"bad gzip", []byte{0x1f, 0x8b, 0, 0}, "idx: gzip"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := readIDX(bytes.NewReader(c.in))
			require.ErrorContains(t, err, c.want)
		})
	}
}

// FuzzIDXRead: any input either fails with an error or gives data of the
// size its shape says; never a panic.
func FuzzIDXRead(f *testing.F) {
	raw := idxBytes([]int{2, 2}, []byte{1, 2, 3, 4})
	f.Add(raw)
	f.Add(gzipBytes(f, raw))
	f.Add([]byte{0, 0, 8, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := readIDX(bytes.NewReader(in))
		if err != nil {
			return
		}
		n := 1
		for _, d := range a.Dims {
			n *= d
		}
		if len(a.Data) != n {
			t.Fatalf("shape %v, %d bytes", a.Dims, len(a.Data))
		}
	})
}

// TestIDXFashionMNIST reads the real test set when the Debian package is
// installed: 10k 28×28 images, the first labelled 9 (ankle boot).
func TestIDXFashionMNIST(t *testing.T) {
	dir := fashionDir("")
	if _, err := idxPath(dir, "t10k-labels-idx1-ubyte"); err != nil {
		t.Skip(err)
	}
	images, labels, err := loadFashionTest(dir)
	require.NoError(t, err)
	require.Equal(t, []int{10000, 28, 28}, images.Dims)
	require.Len(t, labels, 10000)
	require.Equal(t, byte(9), labels[0])
	sub, err := fashionSubset(labels, 200)
	require.NoError(t, err)
	var count [10]int
	for k, i := range sub {
		require.Equal(t, byte(k%10), labels[i])
		count[labels[i]]++
	}
	require.Equal(t, [10]int{20, 20, 20, 20, 20, 20, 20, 20, 20, 20}, count)
}

func TestIDXFiles(t *testing.T) {
	dir := t.TempDir()
	_, _, err := loadFashionTest(dir)
	require.ErrorContains(t, err, "t10k-images-idx3-ubyte(.gz) not found in "+dir)
	img := idxBytes([]int{2, 2, 2}, []byte{0, 255, 0, 0, 1, 1, 1, 1})
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), gzipBytes(t, img), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t10k-labels-idx1-ubyte"), idxBytes([]int{2}, []byte{3, 12}), 0o644))
	_, _, err = loadFashionTest(dir)
	require.ErrorContains(t, err, "label 12 of image 1")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t10k-labels-idx1-ubyte"), idxBytes([]int{3}, []byte{3, 1, 1}), 0o644))
	_, _, err = loadFashionTest(dir)
	require.ErrorContains(t, err, "images [2 2 2] and labels [3]")
}

// TestIDXPad: 28→32 padding as tools/train/data.py (x/127.5 − 1, border −1).
func TestIDXPad(t *testing.T) {
	v := padImage([]byte{0, 255, 128, 51}, 2, 2, 2)
	require.Len(t, v, 36)
	require.Equal(t, float32(-1), v[0])
	require.Equal(t, float32(-1), v[2*6+2])
	require.Equal(t, float32(1), v[2*6+3])
	require.Equal(t, float32(128)/127.5-1, v[3*6+2])
	require.Equal(t, float32(-1), v[35])
}

func TestSSIM(t *testing.T) {
	const h, w = 16, 20
	a, b := make([]float64, h*w), make([]float64, h*w)
	inv := make([]float64, h*w)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := float64((x*7+y*3)%17) / 16
			a[y*w+x] = p
			b[y*w+x] = math.Min(1, math.Max(0, p*0.8+0.1+0.05*math.Sin(float64(x+2*y))))
			inv[y*w+x] = 1 - p
		}
	}
	s, err := ssim(a, a, h, w)
	require.NoError(t, err)
	require.InDelta(t, 1, s, 1e-12)
	// Reference values: PyTorch conv2d with the same 11×11 Gaussian window,
	// 'valid' positions, float64 (computed independently of this code).
	s, err = ssim(a, b, h, w)
	require.NoError(t, err)
	require.InDelta(t, 0.9678635105837672, s, 1e-9)
	s, err = ssim(a, inv, h, w)
	require.NoError(t, err)
	require.InDelta(t, -0.9849689619150579, s, 1e-9)
	require.InDelta(t, 23.069899217241918, psnr(a, b), 1e-9)
	require.Equal(t, 120.0, psnr(a, a))

	_, err = ssim(a, b[:10], h, w)
	require.ErrorContains(t, err, "images of 320 and 10 values, want 16×20")
	_, err = ssim(a[:100], a[:100], 10, 10)
	require.ErrorContains(t, err, "10×10 is smaller than the 11×11 window")
}

func TestBenchEditMapping(t *testing.T) {
	for _, m := range []string{"pairs", "shift"} {
		for l := 0; l < 10; l++ {
			tl, err := fashionEditTarget(m, l)
			require.NoError(t, err)
			require.NotEqual(t, l, tl, "%s: class %d maps to itself", m, l)
		}
	}
	_, err := fashionEditTarget("random", 0)
	require.ErrorContains(t, err, `--map "random"`)
}

func TestBenchEditSummary(t *testing.T) {
	rows := []benchEditRow{
		{Index: 1, Source: "bag", Target: "pullover", Method: "ddim", SSIM: 0.5, PSNR: 10, Calls: 50, File: "ddim/1.png", ReconFile: "ddim/1r.png", SrcFile: "source/1.png", Backend: "cpu"},
		{Index: 2, Source: "ankle boot", Target: "sneaker", Method: "ddim", SSIM: 0.7, PSNR: 20, Calls: 50, File: "ddim/2.png", ReconFile: "ddim/2r.png", SrcFile: "source/2.png", Backend: "cpu"},
	}
	v, err := parseJudge([]byte("out/source/1.png bag 0.9\nout/source/2.png sneaker 0.8\nout/ddim/1.png pullover 0.7\nout/ddim/2.png ankle boot 0.6\nout/ddim/1r.png bag 0.5\nout/ddim/2r.png ankle boot 0.99\n"), "out")
	require.NoError(t, err)
	require.Equal(t, "ankle boot", v["ddim/2.png"])
	s := summarizeBenchEdit(benchEditSettings{}, rows, v)
	require.Len(t, s.Methods, 1)
	m := s.Methods[0]
	require.Equal(t, 2, m.Images)
	require.InDelta(t, 0.5, m.Success, 1e-12)
	require.InDelta(t, 1, m.ReconKept, 1e-12)
	require.InDelta(t, 0.6, m.SSIM, 1e-12)
	require.InDelta(t, 15, m.PSNR, 1e-12)
	require.InDelta(t, 0.5, s.SourceAccuracy, 1e-12)
	require.InDelta(t, 0.5, s.SourceIsTarget, 1e-12)
	md := s.Markdown()
	require.Contains(t, md, "| ddim | 2 | 50.0% | 0.600 | 15.00 |")
	require.Contains(t, md, "| bag→pullover | 100.0% |")
	_, err = parseJudge([]byte("x.png 0.5"), "")
	require.ErrorContains(t, err, "want <file> <class> <prob>")
	require.False(t, strings.Contains(s.Markdown(), "NaN"))
}

//go:build !js

package main

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// idxArray is one IDX file (the MNIST / Fashion-MNIST format): an unsigned
// byte array of shape Dims, row-major.
//
// Layout (http://yann.lecun.com/exdb/mnist/): bytes 0–1 zero, byte 2 the
// element type (0x08 = unsigned byte, the only one read here), byte 3 the
// number of dimensions d, then d big-endian uint32 sizes, then the data.
type idxArray struct {
	Dims []int
	Data []byte
}

// idxMaxElems bounds the element count a header may announce (the
// Fashion-MNIST training images are 47 M), so a corrupt header fails with
// an error instead of a huge allocation.
const idxMaxElems = 1 << 30

// readIDX reads an IDX array, gzip-compressed or not (detected from the
// gzip magic bytes 1f 8b).
func readIDX(r io.Reader) (*idxArray, error) {
	br := bufio.NewReader(r)
	if m, err := br.Peek(2); err == nil && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("idx: gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReader(zr)
	}
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil {
		return nil, fmt.Errorf("idx: header: %w", err)
	}
	if magic[0] != 0 || magic[1] != 0 {
		return nil, fmt.Errorf("idx: magic % x: not an IDX file (want 00 00 <type> <dims>)", magic)
	}
	if magic[2] != 0x08 {
		return nil, fmt.Errorf("idx: element type 0x%02x: only 0x08 (unsigned byte) is supported", magic[2])
	}
	nd := int(magic[3])
	if nd == 0 {
		return nil, fmt.Errorf("idx: 0 dimensions")
	}
	dims := make([]int, nd)
	n := 1
	for i := range dims {
		var d uint32
		if err := binary.Read(br, binary.BigEndian, &d); err != nil {
			return nil, fmt.Errorf("idx: size of dimension %d of %d: %w", i, nd, err)
		}
		dims[i] = int(d)
		if d != 0 && n > idxMaxElems/int(d) {
			return nil, fmt.Errorf("idx: shape %v… has more than %d elements", dims[:i+1], idxMaxElems)
		}
		n *= int(d)
	}
	data := make([]byte, n)
	if k, err := io.ReadFull(br, data); err != nil {
		return nil, fmt.Errorf("idx: shape %v wants %d bytes of data, file has %d: %w", dims, n, k, err)
	}
	return &idxArray{Dims: dims, Data: data}, nil
}

// readIDXFile reads an IDX file from disk; errors name the file.
func readIDXFile(path string) (*idxArray, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	a, err := readIDX(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// fashionClasses are the Fashion-MNIST labels 0–9, named as in the
// default model's vocabulary (tools/train/data.py CLASSES).
var fashionClasses = []string{"t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"}

// fashionDir finds the Fashion-MNIST IDX files: dir if given, else
// $FASHION_MNIST_DIR, else where `dpkg -L dataset-fashion-mnist` put them,
// else /usr/share/datasets/fashion-mnist (as tools/train/data.py does).
func fashionDir(dir string) string {
	if dir != "" {
		return dir
	}
	if d := os.Getenv("FASHION_MNIST_DIR"); d != "" {
		return d
	}
	if out, err := exec.Command("dpkg", "-L", "dataset-fashion-mnist").Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "t10k-images-idx3-ubyte") {
				return filepath.Dir(l)
			}
		}
	}
	return "/usr/share/datasets/fashion-mnist"
}

// idxPath returns dir/name.gz or dir/name, whichever exists.
func idxPath(dir, name string) (string, error) {
	for _, p := range []string{filepath.Join(dir, name+".gz"), filepath.Join(dir, name)} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("fashion-mnist: %s(.gz) not found in %s: install it with `apt-get install dataset-fashion-mnist`, or pass --data / set FASHION_MNIST_DIR to a folder with the IDX files", name, dir)
}

// loadFashionTest reads the 10k Fashion-MNIST test images [N, 28, 28]
// and labels [N].
func loadFashionTest(dir string) (images *idxArray, labels []byte, err error) {
	ip, err := idxPath(dir, "t10k-images-idx3-ubyte")
	if err != nil {
		return nil, nil, err
	}
	lp, err := idxPath(dir, "t10k-labels-idx1-ubyte")
	if err != nil {
		return nil, nil, err
	}
	images, err = readIDXFile(ip)
	if err != nil {
		return nil, nil, err
	}
	l, err := readIDXFile(lp)
	if err != nil {
		return nil, nil, err
	}
	if len(images.Dims) != 3 || len(l.Dims) != 1 || images.Dims[0] != l.Dims[0] {
		return nil, nil, fmt.Errorf("fashion-mnist: images %v and labels %v: want [N H W] and [N]", images.Dims, l.Dims)
	}
	for i, c := range l.Data {
		if int(c) >= len(fashionClasses) {
			return nil, nil, fmt.Errorf("%s: label %d of image %d: want 0–9", lp, c, i)
		}
	}
	return images, l.Data, nil
}

// padImage maps a 28×28 uint8 image to the model's input: 32×32 in
// [−1, 1], x/127.5 − 1, padded by 2 pixels of −1 (black) on every side
// (tools/train/data.py to_model_space).
func padImage(px []byte, h, w, pad int) []float32 {
	W := w + 2*pad
	out := make([]float32, (h+2*pad)*W)
	for i := range out {
		out[i] = -1
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out[(y+pad)*W+x+pad] = float32(px[y*w+x])/127.5 - 1
		}
	}
	return out
}

// Package qr encodes byte payloads as QR code module matrices and decodes
// noisy module matrices back, following ISO/IEC 18004:2015 for versions 1–4
// (21×21 to 33×33 modules), all four error correction levels and all eight
// masks. Section numbers in comments refer to that standard.
//
// It works on module matrices, not photographs: the grid is given (no
// finder search, no perspective). Decoding uses the code's own redundancy:
// BCH(15,5) for the format information and Reed–Solomon over GF(256) for
// the codewords; DecodeSoft adds erasures from per-module probabilities,
// as a detector network that reconstructs the matrix provides them.
package qr

import (
	"fmt"
	"image"
)

// Code is a QR symbol.
type Code struct {
	Version, Size int // Size = 17 + 4·Version modules per side
	Level         Level
	Mask          int    // data mask pattern 0–7 (§7.8.2)
	Modules       []bool // row-major Size×Size, true = dark
}

// Encode encodes data in byte mode (§7.4.5). version 0 picks the smallest of
// versions 1–4 that fits; mask −1 picks the mask with the lowest penalty
// score (§7.8.3), 0–7 forces that mask.
func Encode(data []byte, level Level, version, mask int) (*Code, error) {
	if !level.valid() {
		return nil, fmt.Errorf("qr: error correction level %d is not L, M, Q or H", int(level))
	}
	if mask < -1 || mask > 7 {
		return nil, fmt.Errorf("qr: mask %d is not −1 (automatic) or 0–7", mask)
	}
	switch {
	case version == 0:
		for v := MinVersion; v <= MaxVersion; v++ {
			if len(data) <= ByteCapacity(v, level) {
				version = v
				break
			}
		}
		if version == 0 {
			return nil, fmt.Errorf("qr: %d bytes do not fit versions %d–%d at level %v (capacity %d bytes)",
				len(data), MinVersion, MaxVersion, level, ByteCapacity(MaxVersion, level))
		}
	case version < MinVersion || version > MaxVersion:
		return nil, fmt.Errorf("qr: version %d is not supported (want 0 = automatic or %d–%d)", version, MinVersion, MaxVersion)
	case len(data) > ByteCapacity(version, level):
		return nil, fmt.Errorf("qr: %d bytes do not fit version %d-%v (capacity %d bytes)",
			len(data), version, level, ByteCapacity(version, level))
	}

	codewords := interleave(dataBitstream(data, dataCodewords(version, level)), version, level)
	c := &Code{Version: version, Size: symbolSize(version), Level: level, Mask: mask}
	if mask >= 0 {
		c.Modules = buildMatrix(version, level, mask, codewords)
		return c, nil
	}
	best := -1
	for k := 0; k < 8; k++ {
		m := buildMatrix(version, level, k, codewords)
		if s := penalty(m, c.Size); best < 0 || s < best {
			best, c.Mask, c.Modules = s, k, m
		}
	}
	return c, nil
}

// dataBitstream returns the capacity data codewords of a single byte-mode
// segment (§7.4.5): mode 0100, 8-bit count, the bytes, a terminator of up
// to four zero bits (§7.4.9), zero bits to the byte boundary, then the pad
// codewords 0xEC, 0x11 alternately (§7.4.10). The caller checks the fit.
func dataBitstream(data []byte, capacity int) []byte {
	var w bitWriter
	w.write(0b0100, 4)
	w.write(len(data), 8)
	for _, b := range data {
		w.write(int(b), 8)
	}
	w.write(0, min(4, capacity*8-w.n))
	if r := w.n % 8; r != 0 {
		w.write(0, 8-r)
	}
	for pad := 0xEC; len(w.buf) < capacity; pad ^= 0xEC ^ 0x11 {
		w.write(pad, 8)
	}
	return w.buf
}

// bitWriter appends bits most significant first.
type bitWriter struct {
	buf []byte
	n   int // bits written
}

func (w *bitWriter) write(v, bits int) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		if v>>i&1 != 0 {
			w.buf[w.n/8] |= 0x80 >> (w.n % 8)
		}
		w.n++
	}
}

// Dark reports whether module (row, col) is dark; outside the symbol (the
// quiet zone) it is light.
func (c *Code) Dark(row, col int) bool {
	if row < 0 || col < 0 || row >= c.Size || col >= c.Size {
		return false
	}
	return c.Modules[row*c.Size+col]
}

// Image renders the symbol with scale×scale pixels per module and a quiet
// zone of quiet modules on each side (the spec asks for 4): dark modules
// are 0, light ones 255. scale < 1 is taken as 1, quiet < 0 as 0.
func (c *Code) Image(scale, quiet int) *image.Gray {
	scale = max(scale, 1)
	quiet = max(quiet, 0)
	side := (c.Size + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, side, side))
	for y := 0; y < side; y++ {
		for x := 0; x < side; x++ {
			v := uint8(255)
			if c.Dark(y/scale-quiet, x/scale-quiet) {
				v = 0
			}
			img.Pix[y*img.Stride+x] = v
		}
	}
	return img
}

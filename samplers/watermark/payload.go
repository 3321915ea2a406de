package watermark

import (
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// BitsFromBytes unpacks b most significant bit first (numpy.unpackbits, as
// the invisible-watermark library's 'bytes' payloads do).
func BitsFromBytes(b []byte) []bool {
	bits := make([]bool, 8*len(b))
	for i, x := range b {
		for k := 0; k < 8; k++ {
			bits[8*i+k] = x&(0x80>>k) != 0
		}
	}
	return bits
}

// BitsFromString is BitsFromBytes of the string's UTF-8 bytes
// (set_watermark('bytes', s.encode('utf-8')), e.g. "StableDiffusionV1").
func BitsFromString(s string) []bool { return BitsFromBytes([]byte(s)) }

// BytesFromBits packs bits most significant bit first, padding the last
// byte with zeros (numpy.packbits).
func BytesFromBits(bits []bool) []byte {
	b := make([]byte, (len(bits)+7)/8)
	for i, v := range bits {
		if v {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	return b
}

// ParseBits reads a string of '0' and '1' (an optional "0b" prefix and
// '_' separators are allowed), first character first.
func ParseBits(s string) ([]bool, error) {
	s = strings.ReplaceAll(strings.TrimPrefix(s, "0b"), "_", "")
	if s == "" {
		return nil, fmt.Errorf("watermark: empty bit string")
	}
	bits := make([]bool, len(s))
	for i, ch := range s {
		switch ch {
		case '0':
		case '1':
			bits[i] = true
		default:
			return nil, fmt.Errorf("watermark: bit string %q has %q at position %d (want 0 or 1)", s, ch, i)
		}
	}
	return bits, nil
}

// FormatBits writes bits as '0'/'1' characters.
func FormatBits(bits []bool) string {
	var sb strings.Builder
	for _, b := range bits {
		if b {
			sb.WriteByte('1')
		} else {
			sb.WriteByte('0')
		}
	}
	return sb.String()
}

// PayloadText returns the bits as text when they are whole bytes of valid,
// printable UTF-8 (a decoded payload that was set as a string), else "".
func PayloadText(bits []bool) string {
	if len(bits)%8 != 0 {
		return ""
	}
	b := BytesFromBits(bits)
	if !utf8.Valid(b) {
		return ""
	}
	for _, c := range string(b) {
		if !unicode.IsPrint(c) {
			return ""
		}
	}
	return string(b)
}

// VoteConfidence is the mean over bits of |2v − 1| for DecodeDwtDct's
// per-bit votes v in [0, 1]: 1 when every block agreed, 0 for a coin toss.
func VoteConfidence(votes []float64) float64 {
	var c float64
	for _, v := range votes {
		c += math.Abs(2*v-1) / float64(len(votes))
	}
	return c
}

// BitAccuracy is the share of got's bits equal to want's (same length),
// and whether all are.
func BitAccuracy(got, want []bool) (float64, bool) {
	ok := 0
	for i := range want {
		if got[i] == want[i] {
			ok++
		}
	}
	return float64(ok) / float64(len(want)), ok == len(want)
}

package watermark

import (
	"fmt"
	"strings"
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

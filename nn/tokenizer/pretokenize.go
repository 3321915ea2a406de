package tokenizer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// byteEncoder is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100 and up, in byte order.
var byteEncoder, byteDecoder = func() ([256]rune, map[rune]byte) {
	var enc [256]rune
	dec := make(map[rune]byte, 256)
	n := 0
	for b := 0; b < 256; b++ {
		if b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF {
			enc[b] = rune(b)
		} else {
			enc[b] = rune(256 + n)
			n++
		}
		dec[enc[b]] = byte(b)
	}
	return enc, dec
}()

// byteOrder lists the bytes in the order of bytes_to_unicode's keys (the
// printable ranges first, then the rest): the first 256 ids of the CLIP vocab.
func byteOrder() []byte {
	var order, rest []byte
	for b := 0; b < 256; b++ {
		if byteEncoder[b] == rune(b) {
			order = append(order, byte(b))
		} else {
			rest = append(rest, byte(b))
		}
	}
	return append(order, rest...)
}

// byteEncode maps the UTF-8 bytes of s to byte-level symbols.
func byteEncode(s string) string {
	var sb strings.Builder
	sb.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		sb.WriteRune(byteEncoder[s[i]])
	}
	return sb.String()
}

// pretokenize calls emit for each match of the CLIP pattern
//
//	<|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// compiled with IGNORECASE (Python's regex module), scanning left to right:
// at each position the first alternative that matches wins, and runs are
// greedy. Whitespace (and anything no alternative matches) is skipped.
// s must be valid UTF-8.
func pretokenize(s string, emit func(string)) {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case reSpace(r):
			i += n
			continue
		case r == '<':
			if m := foldPrefix(s[i:], StartOfText); m > 0 {
				emit(s[i : i+m])
				i += m
				continue
			}
			if m := foldPrefix(s[i:], EndOfText); m > 0 {
				emit(s[i : i+m])
				i += m
				continue
			}
		case r == '\'':
			if m := contraction(s[i+1:]); m > 0 {
				emit(s[i : i+1+m])
				i += 1 + m
				continue
			}
		}
		j := i + n
		switch {
		case isLetter(r):
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if !isLetter(r2) {
					break
				}
				j += n2
			}
		case isNumber(r):
		case isPunct(r):
			for j < len(s) {
				r2, n2 := utf8.DecodeRuneInString(s[j:])
				if !isPunct(r2) {
					break
				}
				j += n2
			}
		default: // matches no alternative: findall skips it
			i = j
			continue
		}
		emit(s[i:j])
		i = j
	}
}

// contraction returns the byte length of s's prefix matching
// s|t|re|ve|m|ll|d case-insensitively, or 0.
func contraction(s string) int {
	for _, c := range [...]string{"s", "t", "re", "ve", "m", "ll", "d"} {
		if m := foldPrefix(s, c); m > 0 {
			return m
		}
	}
	return 0
}

// foldPrefix returns the byte length of s's prefix that equals the ASCII
// string lit under simple case folding (as IGNORECASE matches: 's' also
// matches 'ſ' U+017F and 'k' the Kelvin sign), or 0.
func foldPrefix(s, lit string) int {
	i := 0
	for k := 0; k < len(lit); k++ {
		if i >= len(s) {
			return 0
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if !foldEq(r, rune(lit[k])) {
			return 0
		}
		i += n
	}
	return i
}

func foldEq(r, c rune) bool {
	if r == c {
		return true
	}
	for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
		if r == f {
			return true
		}
	}
	return false
}

// isLetter is [\p{L}] (IGNORECASE does not change it).
func isLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z'
	}
	return unicode.IsLetter(r)
}

// isNumber is [\p{N}] (IGNORECASE does not change it).
func isNumber(r rune) bool {
	if r < utf8.RuneSelf {
		return '0' <= r && r <= '9'
	}
	return unicode.IsNumber(r)
}

// isPunct is [^\s\p{L}\p{N}] under IGNORECASE: besides space, letters and
// numbers it excludes characters with a case variant that is a letter or a
// number (U+0345 COMBINING GREEK YPOGEGRAMMENI, a variant of iota), which
// thus match no alternative and are dropped, as Python's regex module does.
func isPunct(r rune) bool {
	if reSpace(r) || isLetter(r) || isNumber(r) {
		return false
	}
	if r < utf8.RuneSelf {
		return true
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if unicode.IsLetter(f) || unicode.IsNumber(f) {
			return false
		}
	}
	return true
}

// reSpace is \s of Python's regex module: the Unicode White_Space property.
func reSpace(r rune) bool { return unicode.IsSpace(r) }

// pySpace is Python's str.isspace (and \s of the re module): Unicode
// White_Space plus U+001C..U+001F.
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || r >= 0x1C && r <= 0x1F
}

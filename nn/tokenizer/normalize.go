package tokenizer

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ftfyClean is transformers' ftfy path: whitespace_clean(ftfy.fix_text(text)).lower().
func ftfyClean(text string) string {
	return pyLower(whitespaceClean(fixText(validUTF8(text))))
}

// basicClean is transformers' path without ftfy:
// " ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text)).
func basicClean(text string) string {
	var sb strings.Builder
	for _, r := range validUTF8(text) {
		switch {
		case r == 0 || r == utf8.RuneError:
		case r == '\t' || r == '\n' || r == '\r' || unicode.Is(unicode.Zs, r):
			sb.WriteByte(' ')
		case isOther(r):
		case isCJK(r):
			sb.WriteByte(' ')
			sb.WriteRune(r)
			sb.WriteByte(' ')
		default:
			sb.WriteRune(r)
		}
	}
	words := strings.FieldsFunc(nfc(sb.String()), pySpace)
	for i, w := range words {
		words[i] = pyLower(w)
	}
	return strings.Join(words, " ")
}

// isOther is Unicode category C* (Cc, Cf, Co, Cs and unassigned Cn).
func isOther(r rune) bool {
	return unicode.In(r, unicode.C) ||
		!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z)
}

// isCJK is BasicTokenizer._is_chinese_char.
func isCJK(r rune) bool {
	return r >= 0x4E00 && r <= 0x9FFF || r >= 0x3400 && r <= 0x4DBF ||
		r >= 0x20000 && r <= 0x2A6DF || r >= 0x2A700 && r <= 0x2B73F ||
		r >= 0x2B740 && r <= 0x2B81F || r >= 0x2B820 && r <= 0x2CEAF ||
		r >= 0xF900 && r <= 0xFAFF || r >= 0x2F800 && r <= 0x2FA1F
}

// validUTF8 replaces each invalid byte by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var sb strings.Builder
	for _, r := range s {
		sb.WriteRune(r)
	}
	return sb.String()
}

// whitespaceClean is regex.sub(r"\s+", " ", text).strip(): runs of
// White_Space become one space, then str.strip's wider set (which adds
// U+001C..U+001F) is trimmed from the ends.
func whitespaceClean(s string) string {
	return strings.TrimFunc(strings.Join(strings.FieldsFunc(s, reSpace), " "), pySpace)
}

// pyLower is Python's str.lower: the simple lower-case mapping except
// U+0130 (→ "i̇") and capital sigma, which becomes final sigma ς after a
// cased letter when no cased letter follows (case-ignorable characters in
// between are skipped).
func pyLower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var sb strings.Builder
	sb.Grow(len(s))
	for i, r := range rs {
		switch r {
		case 0x130:
			sb.WriteString("i\u0307")
		case 0x3A3:
			if finalSigma(rs, i) {
				sb.WriteRune(0x3C2)
			} else {
				sb.WriteRune(0x3C3)
			}
		default:
			sb.WriteRune(unicode.ToLower(r))
		}
	}
	return sb.String()
}

func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && caseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !cased(rs[j])
}

func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.Is(unicode.Other_Lowercase, r) || unicode.Is(unicode.Other_Uppercase, r)
}

func caseIgnorable(r rune) bool {
	switch r {
	case '\'', '.', ':', 0xB7, 0x387, 0x55F, 0x5F4, 0x2018, 0x2019, 0x2024, 0x2027,
		0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// maxDecodeLength is ftfy's TextFixerConfig.max_decode_length (code points).
const maxDecodeLength = 1000000

// fixText is ftfy.fix_text (6.1.1, default config) without fix_encoding:
// the text is fixed line by line; HTML unescaping ("auto") is switched off
// for a line containing '<' and for every line after it.
func fixText(text string) string {
	unescape := true
	var out strings.Builder
	for pos := 0; pos < len(text); {
		end := len(text)
		if k := strings.IndexByte(text[pos:], '\n'); k >= 0 {
			end = pos + k + 1
		}
		if n := 0; end-pos > maxDecodeLength {
			for i := range text[pos:end] {
				if n == maxDecodeLength {
					end = pos + i
					break
				}
				n++
			}
		}
		seg := text[pos:end]
		if unescape && strings.IndexByte(seg, '<') >= 0 {
			unescape = false
		}
		out.WriteString(fixSegment(seg, unescape))
		pos = end
	}
	return out.String()
}

// fixSegment is ftfy's fix_and_explain loop: apply the fixers in order
// until the text stops changing. Each round can peel one level of nested
// escapes ("&amp;amp;lt;"); the bound only guards against a cycle.
func fixSegment(s string, unescape bool) string {
	for iter := 0; iter < 10000; iter++ {
		orig := s
		if unescape {
			s = unescapeHTML(s)
		}
		s = mapRunes(s)
		s = fixLineBreaks(s)
		s = removeTerminalEscapes(s)
		s = removeControlChars(s)
		s = nfc(s)
		if s == orig {
			break
		}
	}
	return s
}

// mapRunes applies ftfy's per-character fixers in their order:
// fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes.
func mapRunes(s string) string {
	clean := true
	for _, r := range s {
		if r >= 0x80 && mapsRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var sb strings.Builder
	for _, r := range s {
		step := string(r)
		if r >= 0x80 && r <= 0x9F {
			step = string(cp1252[r-0x80])
		}
		step = mapEach(step, func(r rune) string {
			if l, ok := ligatures[r]; ok {
				return l
			}
			return string(r)
		})
		step = mapEach(step, func(r rune) string {
			if r == 0x3000 {
				return " "
			}
			if r >= 0xFF01 && r < 0xFFF0 {
				return nfkc(string(r))
			}
			return string(r)
		})
		step = mapEach(step, func(r rune) string {
			switch {
			case r == 0x2BC || r >= 0x2018 && r <= 0x201B:
				return "'"
			case r >= 0x201C && r <= 0x201F:
				return "\""
			}
			return string(r)
		})
		sb.WriteString(step)
	}
	return sb.String()
}

func mapsRune(r rune) bool {
	_, lig := ligatures[r]
	return r <= 0x9F || lig || r == 0x3000 || r >= 0xFF01 && r < 0xFFF0 ||
		r == 0x2BC || r >= 0x2018 && r <= 0x201F
}

func mapEach(s string, f func(rune) string) string {
	if len(s) == utf8.RuneLen([]rune(s)[0]) {
		return f([]rune(s)[0])
	}
	var sb strings.Builder
	for _, r := range s {
		sb.WriteString(f(r))
	}
	return sb.String()
}

// cp1252 is ftfy's "sloppy-windows-1252" for bytes 0x80..0x9F: Windows-1252,
// with its five undefined bytes kept as the C1 code points.
var cp1252 = [32]rune{
	0x20AC, 0x81, 0x201A, 0x192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x2C6, 0x2030, 0x160, 0x2039, 0x152, 0x8D, 0x17D, 0x8F,
	0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x2DC, 0x2122, 0x161, 0x203A, 0x153, 0x9D, 0x17E, 0x178,
}

// ligatures is ftfy's chardata.LIGATURES.
var ligatures = map[rune]string{
	'Ĳ': "IJ", 'ĳ': "ij", 'ŉ': "ʼn",
	'Ǳ': "DZ", 'ǲ': "Dz", 'ǳ': "dz", 'Ǆ': "DŽ", 'ǅ': "Dž", 'ǆ': "dž",
	'Ǉ': "LJ", 'ǈ': "Lj", 'ǉ': "lj", 'Ǌ': "NJ", 'ǋ': "Nj", 'ǌ': "nj",
	'ﬀ': "ff", 'ﬁ': "fi", 'ﬂ': "fl", 'ﬃ': "ffi", 'ﬄ': "ffl", 'ﬅ': "ſt", 'ﬆ': "st",
}

// fixLineBreaks is ftfy's fix_line_breaks.
func fixLineBreaks(s string) string {
	if !strings.ContainsAny(s, "\r\u2028\u2029\u0085") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.NewReplacer("\r", "\n", "\u2028", "\n", "\u2029", "\n", "\u0085", "\n").Replace(s)
}

// removeTerminalEscapes removes ANSI escapes ESC '[' (\d|;)* [a-zA-Z]
// (\d is any Unicode decimal digit, as in Python's re).
func removeTerminalEscapes(s string) string {
	if strings.IndexByte(s, 0x1B) < 0 {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); {
		if s[i] == 0x1B && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) {
				r, n := utf8.DecodeRuneInString(s[j:])
				if r != ';' && !unicode.IsDigit(r) {
					break
				}
				j += n
			}
			if j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				i = j + 1
				continue
			}
		}
		sb.WriteByte(s[i])
		i++
	}
	return sb.String()
}

// removeControlChars is ftfy's remove_control_chars.
func removeControlChars(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= 0x08 || r == 0x0B || r >= 0x0E && r <= 0x1F || r == 0x7F ||
			r >= 0x206A && r <= 0x206F || r == 0xFEFF || r >= 0xFFF9 && r <= 0xFFFC {
			return -1
		}
		return r
	}, s)
}

// unescapeHTML is ftfy's unescape_html: every match of &#?[0-9A-Za-z]{1,24};
// that is a known HTML5 entity (or a lower-case entity written in upper case,
// such as &NTILDE;), or a complete numeric reference, is replaced.
func unescapeHTML(s string) string {
	if strings.IndexByte(s, '&') < 0 {
		return s
	}
	var sb strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '&' {
			continue
		}
		j := i + 1
		if j < len(s) && s[j] == '#' {
			j++
		}
		k := j
		for k < len(s) && k-j < 24 && isAlnum(s[k]) {
			k++
		}
		if k == j || k >= len(s) || s[k] != ';' {
			continue
		}
		ent := s[i : k+1]
		rep, ok := entity(ent)
		if !ok {
			i = k
			continue
		}
		sb.WriteString(s[last:i])
		sb.WriteString(rep)
		last = k + 1
		i = k
	}
	if last == 0 {
		return s
	}
	sb.WriteString(s[last:])
	return sb.String()
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// entity decodes one "&...;" the way ftfy's _unescape_fixup does.
func entity(ent string) (string, bool) {
	if ent[1] == '#' {
		return numericEntity(ent[2 : len(ent)-1])
	}
	if r, ok := namedEntity(ent); ok {
		return r, true
	}
	// A lower-case entity name written in upper case, unless the upper-case
	// spelling means something to html.unescape itself.
	name := ent[1 : len(ent)-1]
	lower := strings.ToLower(name)
	if lower == name || strings.ToUpper(name) != name || html.UnescapeString(ent) != ent {
		return "", false
	}
	r, ok := namedEntity("&" + lower + ";")
	if !ok {
		return "", false
	}
	return pyUpper(r), true
}

// namedEntity looks ent ("&name;") up in the HTML5 entity table, exactly:
// html.UnescapeString also accepts prefixes of legacy names (giving
// decoded + rest, at least three runes); an exact hit is one or two runes.
func namedEntity(ent string) (string, bool) {
	r := html.UnescapeString(ent)
	if r == ent || utf8.RuneCountInString(r) > 2 {
		return "", false
	}
	return r, true
}

// numericEntity decodes "65" or "x41" as Python's html.unescape does, and
// reports false where ftfy keeps the text (not a complete reference).
func numericEntity(num string) (string, bool) {
	base, digits := 10, num
	if num[0] == 'x' || num[0] == 'X' {
		base, digits = 16, num[1:]
	}
	if digits == "" {
		return "", false
	}
	v := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d int
		switch {
		case c >= '0' && c <= '9':
			d = int(c - '0')
		case base == 16 && c >= 'a' && c <= 'f':
			d = int(c-'a') + 10
		case base == 16 && c >= 'A' && c <= 'F':
			d = int(c-'A') + 10
		default:
			return "", false
		}
		if v <= 0x10FFFF {
			v = v*base + d
		}
	}
	switch {
	case v == 0:
		return "\uFFFD", true
	case v == 0x0D:
		return "\r", true
	case v >= 0x80 && v <= 0x9F:
		return string(cp1252[v-0x80]), true
	case v >= 0xD800 && v <= 0xDFFF || v > 0x10FFFF:
		return "\uFFFD", true
	case v >= 0x1 && v <= 0x8 || v >= 0xE && v <= 0x1F || v >= 0x7F && v <= 0x9F ||
		v >= 0xFDD0 && v <= 0xFDEF || v == 0xB || v&0xFFFE == 0xFFFE:
		return "", true
	}
	return string(rune(v)), true
}

// pyUpper is str.upper for entity values: the simple mapping plus the full
// mappings that occur among HTML5 entities.
func pyUpper(s string) string {
	switch s {
	case "ß":
		return "SS"
	case "ﬀ":
		return "FF"
	case "ﬁ":
		return "FI"
	case "ﬂ":
		return "FL"
	case "ﬃ":
		return "FFI"
	case "ﬄ":
		return "FFL"
	case "ŉ":
		return "ʼN"
	}
	return strings.Map(unicode.ToUpper, s)
}

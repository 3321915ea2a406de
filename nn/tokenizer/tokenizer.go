// Package tokenizer is the CLIP byte-level BPE tokenizer used by Stable
// Diffusion's text encoder, in pure Go (it also builds for GOOS=js).
//
// It reproduces the ids of transformers' CLIPTokenizer (the slow Python one,
// transformers 4.39) as StableDiffusionPipeline calls it:
//
//	tokenizer(prompt, padding="max_length", max_length=77, truncation=True).input_ids
//
// The pipeline, step by step:
//
//  1. The text is split on the added (special) tokens, exactly and case
//     sensitively (transformers' tokens_trie): a literal "<|endoftext|>" in a
//     prompt becomes that token's id and its neighbours are cleaned apart.
//  2. Each other piece is cleaned. With [NormFtfy] (the default; what
//     transformers does when the ftfy package is installed, as in every SD
//     install) that is ftfy.fix_text, then whitespace runs collapsed to one
//     space and the ends trimmed, then Python's str.lower(). With [NormBasic]
//     it is transformers' BasicTokenizer fallback used when ftfy is missing.
//  3. Pre-tokenisation with the CLIP pattern (case-insensitive, as compiled
//     by transformers)
//     <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//     implemented as a hand-written scanner. Case-insensitivity matters only
//     at the edges: "'ſ" is a contraction like "'s", and U+0345 (whose case
//     variants are letters) matches no alternative and is dropped, as in
//     Python's regex module.
//  4. Each piece's UTF-8 bytes are mapped to printable runes (GPT-2's
//     bytes_to_unicode), "</w>" is appended to the last symbol, and the
//     merges are applied as transformers does: the lowest-ranked pair
//     present, all its non-overlapping occurrences left to right, again
//     until no pair has a rank (with a heap, so a long word without spaces
//     costs O(n log n), not O(n²)). Results are cached.
//  5. Symbols map to ids through the vocabulary; a symbol missing from it
//     maps to the unk token (<|endoftext|> for CLIP).
//  6. [Tokenizer.Encode] adds BOS and EOS; [Tokenizer.EncodePadded] keeps
//     BOS + the first maxLen-2 tokens + EOS and pads with the pad token.
//
// What ftfy.fix_text (ftfy 6.1.1, default config) does here: HTML entity
// unescaping (only in lines without '<', and not in any line after the first
// one containing '<', as ftfy does), C1 control characters read as
// Windows-1252, Latin ligatures split, fullwidth/halfwidth forms (U+FF01 to
// U+FFEF and U+3000) replaced by their NFKC form, curly quotes straightened,
// line breaks unified, ANSI terminal escapes and control characters removed,
// NFC, all repeated until nothing changes. Not implemented: ftfy's mojibake
// repair (fix_encoding: text such as "cafÃ©" that is UTF-8 decoded as
// Latin-1/Windows-1252 is left as it is; ftfy would turn it into "café",
// and it sometimes rewrites odd mixes of Latin-1 symbols and accented
// capitals that merely look like mojibake),
// and lone surrogates, which a Go string cannot hold. Invalid UTF-8 in the
// input is read as U+FFFD per bad byte (Python never sees such text).
//
// Lower-casing follows Python's str.lower (İ becomes "i̇", capital sigma
// becomes final sigma at the end of a word); the Unicode tables are Go's
// (Python 3.11 uses Unicode 14), which matters only for characters assigned
// since then.
//
// [NormBasic] (transformers without ftfy) differs from [NormFtfy] on text
// with CJK ideographs (it puts spaces around them), zero-width and other
// format characters (it drops them), fullwidth forms, curly quotes and
// ligatures (it leaves them), and it never unescapes HTML. On the golden
// cases both modes match their transformers column exactly.
//
// The openai/CLIP reference tokenizer (simple_tokenizer.py) additionally
// runs Python's html.unescape twice after ftfy, so its ids differ from
// transformers' where that still changes the text: entities in a line
// containing '<' ("&amp; <b>"), or without their ';' ("&amp", "this&not
// that"). This package follows transformers, which is what Stable
// Diffusion uses.
//
// Loaders: [Load] reads a diffusers "tokenizer/" folder, [LoadOpenAI] the
// original bpe_simple_vocab_16e6.txt.gz, [FromReaders] and [New] take
// readers (for the browser). The full CLIP vocabulary gives identical ids
// from either source.
package tokenizer

import (
	"strings"
	"sync"
	"unicode/utf8"
)

// Normalization selects how text is cleaned before pre-tokenisation.
type Normalization int

const (
	// NormFtfy is transformers' CLIPTokenizer with ftfy installed:
	// ftfy.fix_text, whitespace collapse and trim, str.lower. This is what
	// Stable Diffusion pipelines normally run with.
	NormFtfy Normalization = iota
	// NormBasic is transformers' fallback without ftfy: BasicTokenizer
	// (strip_accents=False, do_split_on_punc=False): control and format
	// characters dropped, spaces around CJK ideographs, NFC, lower-case.
	NormBasic
)

// DefaultMaxLength is CLIP's context length (model_max_length).
const DefaultMaxLength = 77

// The CLIP special tokens; the pre-tokeniser and the BPE cache know them by
// these names whatever the configured special tokens are (as transformers).
const (
	StartOfText = "<|startoftext|>"
	EndOfText   = "<|endoftext|>"
)

// maxCache bounds the BPE cache; it is emptied when full.
const maxCache = 1 << 14

type pair struct{ a, b string }

// Tokenizer is a CLIP BPE tokenizer. It is safe for concurrent use once
// built (do not change Mode while encoding).
type Tokenizer struct {
	// Mode selects the text cleaning; the zero value is NormFtfy.
	Mode Normalization
	// MaxLength is model_max_length, used by EncodePadded for maxLen <= 0.
	MaxLength int
	// BOS, EOS, Pad and Unk are the special token ids.
	BOS, EOS, Pad, Unk int

	encoder map[string]int
	decoder map[int]string
	ranks   map[pair]int
	// added are the added/special token strings split out before cleaning,
	// longest first.
	added      []string
	addedSet   map[string]bool
	addedFirst [256]bool
	vocabSize  int

	mu    sync.Mutex
	cache map[string][]string
}

// VocabSize is one more than the largest token id.
func (t *Tokenizer) VocabSize() int { return t.vocabSize }

// ID returns the id of a vocabulary symbol (e.g. "cat</w>").
func (t *Tokenizer) ID(symbol string) (int, bool) {
	id, ok := t.encoder[symbol]
	return id, ok
}

// Tokenize returns the BPE symbols of text (no BOS/EOS), e.g.
// "a photo" → ["a</w>", "photo</w>"].
func (t *Tokenizer) Tokenize(text string) []string {
	out := []string{}
	for _, seg := range t.splitAdded(text) {
		if seg.special {
			out = append(out, seg.text)
			continue
		}
		var clean string
		if t.Mode == NormBasic {
			clean = basicClean(seg.text)
		} else {
			clean = ftfyClean(seg.text)
		}
		pretokenize(clean, func(piece string) {
			out = append(out, t.bpe(byteEncode(piece))...)
		})
	}
	return out
}

// Encode returns BOS, the ids of text and EOS, without truncation or
// padding. len(Encode(text)) is the length a prompt needs; more than
// MaxLength means EncodePadded drops tokens.
func (t *Tokenizer) Encode(text string) []int {
	syms := t.Tokenize(text)
	ids := make([]int, 0, len(syms)+2)
	ids = append(ids, t.BOS)
	for _, s := range syms {
		id, ok := t.encoder[s]
		if !ok {
			id = t.Unk
		}
		ids = append(ids, id)
	}
	return append(ids, t.EOS)
}

// EncodePadded returns exactly maxLen ids the way Stable Diffusion asks for
// them (padding="max_length", truncation=True): BOS, the first maxLen-2 ids
// of text, EOS, then the pad id up to maxLen. truncated reports that text
// had more than maxLen-2 tokens and some were dropped. maxLen <= 0 means
// t.MaxLength; maxLen 1 is taken as 2 (room for BOS and EOS).
func (t *Tokenizer) EncodePadded(text string, maxLen int) (ids []int, truncated bool) {
	if maxLen <= 0 {
		maxLen = t.MaxLength
	}
	if maxLen < 2 {
		maxLen = 2
	}
	ids = t.Encode(text)
	if len(ids) > maxLen {
		ids = append(ids[:maxLen-1], t.EOS)
		truncated = true
	}
	for len(ids) < maxLen {
		ids = append(ids, t.Pad)
	}
	return ids, truncated
}

// Decode turns ids back into text, skipping special tokens, as
// transformers' decode(ids, skip_special_tokens=True) does (word ends
// become spaces; invalid UTF-8 becomes U+FFFD). Unknown ids are skipped.
func (t *Tokenizer) Decode(ids []int) string {
	var sb strings.Builder
	for _, id := range ids {
		s, ok := t.decoder[id]
		if !ok || t.addedSet[s] {
			continue
		}
		sb.WriteString(s)
	}
	var b []byte
	for _, r := range sb.String() {
		if c, ok := byteDecoder[r]; ok {
			b = append(b, c)
		} else {
			b = utf8.AppendRune(b, r)
		}
	}
	text := strings.ToValidUTF8(string(b), "\uFFFD")
	return strings.TrimSpace(strings.ReplaceAll(text, "</w>", " "))
}

type segment struct {
	text    string
	special bool
}

// splitAdded splits text on the added tokens, leftmost then longest match,
// as transformers' Trie.split does for non-overlapping token sets.
func (t *Tokenizer) splitAdded(text string) []segment {
	var segs []segment
	start := 0
	for i := 0; i < len(text); {
		if !t.addedFirst[text[i]] {
			i++
			continue
		}
		match := ""
		for _, a := range t.added {
			if strings.HasPrefix(text[i:], a) {
				match = a
				break
			}
		}
		if match == "" {
			i++
			continue
		}
		if start < i {
			segs = append(segs, segment{text: text[start:i]})
		}
		segs = append(segs, segment{text: match, special: true})
		i += len(match)
		start = i
	}
	if start < len(text) {
		segs = append(segs, segment{text: text[start:]})
	}
	return segs
}

// bpe applies the merges to one byte-encoded word and returns its symbols
// (transformers' CLIPTokenizer.bpe).
func (t *Tokenizer) bpe(token string) []string {
	if token == StartOfText || token == EndOfText {
		return []string{token}
	}
	t.mu.Lock()
	cached, ok := t.cache[token]
	t.mu.Unlock()
	if ok {
		return cached
	}
	word := make([]string, 0, utf8.RuneCountInString(token))
	for i, r := range token {
		n := utf8.RuneLen(r)
		if i+n == len(token) {
			word = append(word, token[i:]+"</w>")
		} else {
			word = append(word, token[i:i+n])
		}
	}
	word = t.merge(word)
	t.mu.Lock()
	if len(t.cache) >= maxCache {
		t.cache = make(map[string][]string)
	}
	t.cache[token] = word
	t.mu.Unlock()
	return word
}

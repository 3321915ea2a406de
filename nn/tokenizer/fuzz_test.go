package tokenizer

import (
	"bytes"
	"strings"
	"testing"
)

// fuzzTokenizers are the synthetic tokenizer and, when the data is there,
// the real CLIP BPE (no skip: the fuzzer runs without fixtures too).
func fuzzTokenizers(f *testing.F) []*Tokenizer {
	toks := []*Tokenizer{synthTokenizer(f)}
	for _, dir := range []string{"../../testdata/golden/clip_bpe", "../../../shared/fixtures/clip_bpe"} {
		if tok, err := Load(dir); err == nil {
			toks = append(toks, tok)
			break
		}
	}
	return toks
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		"a photo of an astronaut riding a horse on mars", "", "  ", "don't 'ſ 'S",
		"&amp;amp; &NTILDE; &#x41; <b>", "<|endoftext|><|startoftext|>x", "İΣΑΣ \u0345 ﬁ ＡＢＣ ｶﾞ",
		"\u0091\x1b[31m\x00\xff\xfe", "東京 😀👩\u200d🚀", strings.Repeat("word ", 100),
		strings.Repeat("x", 300), "e\u0301\u0327\u0308", "\n&amp;\n<\n&amp;",
	} {
		f.Add(s)
	}
	toks := fuzzTokenizers(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			for _, mode := range []Normalization{NormFtfy, NormBasic} {
				tok.Mode = mode
				ids := tok.Encode(s)
				if len(ids) < 2 || ids[0] != tok.BOS || ids[len(ids)-1] != tok.EOS {
					t.Fatalf("mode %d %q: ids %v lack BOS/EOS", mode, s, ids)
				}
				for _, id := range ids {
					if id < 0 || id >= tok.VocabSize() {
						t.Fatalf("mode %d %q: id %d out of [0,%d)", mode, s, id, tok.VocabSize())
					}
				}
				padded, truncated := tok.EncodePadded(s, 77)
				if len(padded) != 77 {
					t.Fatalf("mode %d %q: padded length %d", mode, s, len(padded))
				}
				if truncated != (len(ids) > 77) {
					t.Fatalf("mode %d %q: truncated %v with %d ids", mode, s, truncated, len(ids))
				}
				n := min(len(ids), 77) - 1
				for i := 0; i < n; i++ {
					if padded[i] != ids[i] {
						t.Fatalf("mode %d %q: padded[%d]=%d, Encode gives %d", mode, s, i, padded[i], ids[i])
					}
				}
				if again := tok.Encode(s); len(again) != len(ids) {
					t.Fatalf("mode %d %q: not deterministic", mode, s)
				}
				_ = tok.Decode(padded)
			}
			tok.Mode = NormFtfy
		}
	})
}

func FuzzLoadMerges(f *testing.F) {
	vocab, merges := synthFiles(synthMerges)
	for _, s := range []string{
		string(merges), "", "#version: 0.2\n", "#version: 0.2\nh e\n", "\n\n#v\r\nh e\r\nl l\r\n",
		"#v\nh e\nl\n", "#v\n\xff \xfe\n", "#v\na  b\n\u00a0c d\u2028e f", "h e\nl l",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseMerges(bytes.NewReader(data), "fuzz.txt")
		if err == nil {
			if len(ms) > maxMerges {
				t.Fatalf("%d merges", len(ms))
			}
			for _, m := range ms {
				for _, sym := range m {
					if sym == "" || strings.ContainsFunc(sym, pySpace) {
						t.Fatalf("bad symbol %q", sym)
					}
				}
			}
		} else if !strings.Contains(err.Error(), "fuzz.txt") {
			t.Fatalf("error does not name the file: %v", err)
		}
		for _, build := range []func() (*Tokenizer, error){
			func() (*Tokenizer, error) { return FromReaders(bytes.NewReader(vocab), bytes.NewReader(data)) },
			func() (*Tokenizer, error) { return FromOpenAI(bytes.NewReader(gz(data))) },
		} {
			tok, err := build()
			if err != nil {
				continue
			}
			ids, _ := tok.EncodePadded("hello the world xxxx abc", 77)
			for _, id := range ids {
				if id < 0 || id >= tok.VocabSize() {
					t.Fatalf("id %d out of range", id)
				}
			}
		}
	})
}

package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// synthMerges is a small merge list for tests that need no fixture data.
var synthMerges = []string{"h e", "l l", "ll o</w>", "he llo</w>", "a b", "ab c</w>", "x x", "xx xx", "xxxx xxxx", "t h", "th e</w>"}

// synthFiles returns vocab.json and merges.txt contents of a tokenizer laid
// out like CLIP's: byte symbols, the same with </w>, merges, then specials.
func synthFiles(merges []string) (vocab, mergesTxt []byte) {
	enc := map[string]int{}
	var list []string
	for _, b := range byteOrder() {
		list = append(list, string(byteEncoder[b]))
	}
	for i := range 256 {
		list = append(list, list[i]+"</w>")
	}
	for _, m := range merges {
		list = append(list, strings.Replace(m, " ", "", 1))
	}
	list = append(list, StartOfText, EndOfText)
	for id, s := range list {
		enc[s] = id
	}
	vocab, _ = json.Marshal(enc)
	mergesTxt = []byte("#version: 0.2\n" + strings.Join(merges, "\n") + "\n")
	return vocab, mergesTxt
}

func synthTokenizer(t testing.TB) *Tokenizer {
	v, m := synthFiles(synthMerges)
	tok, err := FromReaders(bytes.NewReader(v), bytes.NewReader(m))
	require.NoError(t, err)
	return tok
}

func TestTokenizerBPE(t *testing.T) {
	tok := synthTokenizer(t)
	require.Equal(t, 512+len(synthMerges)+2, tok.VocabSize())
	bos, eos := tok.BOS, tok.EOS
	require.Equal(t, tok.VocabSize()-2, bos)
	require.Equal(t, eos, tok.Pad)
	require.Equal(t, eos, tok.Unk)
	for _, c := range []struct {
		text string
		want []string
	}{
		{"hello", []string{"hello</w>"}},
		{"Hello, THE hello!", []string{"hello</w>", ",</w>", "the</w>", "hello</w>", "!</w>"}},
		{"abc ab abcd", []string{"abc</w>", "a", "b</w>", "ab", "c", "d</w>"}},
		{"xxxxxxxxx", []string{"xxxxxxxx", "x</w>"}},
		{"xxx", []string{"xx", "x</w>"}},
		{"a", []string{"a</w>"}},
		{"it's 42", []string{"i", "t</w>", "'", "s</w>", "4</w>", "2</w>"}},
		{"  \t\n ", []string{}},
		{"é", []string{"Ã", "©</w>"}},
		{"a<|endoftext|>b", []string{"a</w>", EndOfText, "b</w>"}},
	} {
		require.Equal(t, c.want, tok.Tokenize(c.text), "%q", c.text)
	}
	// A symbol missing from the vocab maps to unk.
	v, m := synthFiles(synthMerges)
	var enc map[string]int
	require.NoError(t, json.Unmarshal(v, &enc))
	delete(enc, "q</w>")
	v, _ = json.Marshal(enc)
	tq, err := FromReaders(bytes.NewReader(v), bytes.NewReader(m))
	require.NoError(t, err)
	require.Equal(t, []int{bos, tq.Unk, eos}, tq.Encode("q"))
	// The cache returns the same symbols the second time.
	require.Equal(t, tok.Tokenize("hello hello"), tok.Tokenize("hello hello"))
}

func TestTokenizerEncodePadded(t *testing.T) {
	tok := synthTokenizer(t)
	words := func(n int) string { return strings.TrimSpace(strings.Repeat("a ", n)) }
	a := tok.Encode("a")[1]
	for _, c := range []struct {
		n, maxLen, wantLen int
		truncated          bool
	}{
		{0, 77, 77, false}, {1, 77, 77, false}, {75, 77, 77, false}, {76, 77, 77, true},
		{200, 77, 77, true}, {3, 0, 77, false}, {100, 0, 77, true}, {3, 1, 2, true},
		{3, 2, 2, true}, {1, 3, 3, false}, {2, 3, 3, true}, {7, 9, 9, false},
	} {
		name := fmt.Sprintf("n=%d maxLen=%d", c.n, c.maxLen)
		full := tok.Encode(words(c.n))
		require.Len(t, full, c.n+2, name)
		ids, truncated := tok.EncodePadded(words(c.n), c.maxLen)
		require.Len(t, ids, c.wantLen, name)
		require.Equal(t, c.truncated, truncated, name)
		require.Equal(t, tok.BOS, ids[0], name)
		kept := min(c.n, c.wantLen-2)
		for i := 1; i <= kept; i++ {
			require.Equal(t, a, ids[i], name)
		}
		require.Equal(t, tok.EOS, ids[kept+1], name)
		for i := kept + 2; i < len(ids); i++ {
			require.Equal(t, tok.Pad, ids[i], name)
		}
	}
}

func TestTokenizerDecode(t *testing.T) {
	tok := synthTokenizer(t)
	for _, c := range []struct{ in, want string }{
		{"Hello, the World!", "hello , the world !"},
		{"café 東京 😀", "café 東京 😀"},
		{"a<|endoftext|>b", "a b"},
		{"", ""},
	} {
		ids, _ := tok.EncodePadded(c.in, 77)
		require.Equal(t, c.want, tok.Decode(ids), "%q", c.in)
	}
}

func TestTokenizerPretokenize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"don't stop", []string{"don", "'t", "stop"}},
		{"we'll i'm they're you've he'd", []string{"we", "'ll", "i", "'m", "they", "'re", "you", "'ve", "he", "'d"}},
		{"'x '", []string{"'", "x", "'"}},
		{"?'s", []string{"?'", "s"}},
		{"'ſt", []string{"'ſ", "t"}},
		{"abc123", []string{"abc", "1", "2", "3"}},
		{"hello!!! ---> <--", []string{"hello", "!!!", "--->", "<--"}},
		{"<|startoftext|>x<|endoftext|>", []string{"<|startoftext|>", "x", "<|endoftext|>"}},
		{"!<|endoftext|>", []string{"!<|", "endoftext", "|>"}},
		{"<|ſtartoftext|>", []string{"<|ſtartoftext|>"}},
		{"<|endoftext", []string{"<|", "endoftext"}},
		{"a\u0345b", []string{"a", "b"}},
		{"ℌ²½", []string{"ℌ", "²", "½"}},
		{"😀👍 x", []string{"😀👍", "x"}},
		{"", nil},
	} {
		var got []string
		pretokenize(c.in, func(s string) { got = append(got, s) })
		require.Equal(t, c.want, got, "%q", c.in)
	}
}

func TestTokenizerClean(t *testing.T) {
	for _, c := range []struct{ in, ftfy, basic string }{
		{"  A  Photo\tOF\n", "a photo of", "a photo of"},
		{"P&EACUTE;REZ", "pérez", "p&eacute;rez"},
		{"BUNDESSTRA&SZLIG;E", "bundesstrasse", "bundesstra&szlig;e"},
		{"&ntilde; &Ntilde; &NTILDE; &nTILDE;", "ñ ñ ñ &ntilde;", "&ntilde; &ntilde; &ntilde; &ntilde;"},
		{"&amp;amp; &#65;&#x42; &#65x; &ampx; &#0;", "& ab &#65x; &ampx; \ufffd", "&amp;amp; &#65;&#x42; &#65x; &ampx; &#0;"},
		{"a &amp; <b>", "a &amp; <b>", "a &amp; <b>"},
		{"x &amp;\n<b> &amp;\n&amp;", "x & <b> &amp; &amp;", "x &amp; <b> &amp; &amp;"},
		{"İΣΑΣ ΑΣ. Σ", "i̇σας ας. σ", "i̇σας ας. σ"},
		{"\u0091q\u0092 \u0085", "'q' …", "q"},
		{"ﬁne ĳ ŉ", "fine ij 'n", "ﬁne ĳ ŉ"},
		{"ＡＢＣ！ｶﾞ\u3000x", "abc!ガ x", "ａｂｃ！ｶﾞ x"},
		{"“q” ‘s’", "\"q\" 's'", "“q” ‘s’"},
		{"red\x1b[31mX\x1b[0m", "redx", "red[31mx[0m"},
		{"a\x01b\x7fc\u200bd\ufeffe", "abc\u200bde", "abcde"},
		{"e\u0301", "é", "é"},
		{"東京x", "東京x", "東 京 x"},
		{"a\u2028b\x1cc", "a bc", "a bc"},
	} {
		require.Equal(t, c.ftfy, ftfyClean(c.in), "ftfy %q", c.in)
		require.Equal(t, c.basic, basicClean(c.in), "basic %q", c.in)
	}
	// Invalid UTF-8 reads as U+FFFD per byte.
	require.Equal(t, "a\ufffd\ufffdb", ftfyClean("a\xff\xfeb"))
}

// TestGoldenTokenizerEdgeCases checks testdata/edge_cases.json: ids of
// tricky prompts (entities, ftfy fixers, casing, special tokens) from a
// Python run of transformers' CLIPTokenizer algorithm over the real ftfy
// 6.1.1 and regex module.
func TestGoldenTokenizerEdgeCases(t *testing.T) {
	tok, err := Load(vocabDir(t))
	require.NoError(t, err)
	data, err := os.ReadFile("testdata/edge_cases.json")
	require.NoError(t, err)
	var f struct {
		Cases []struct {
			Prompt    string `json:"prompt"`
			IDsFtfy   []int  `json:"ids_ftfy"`
			IDsNoFtfy []int  `json:"ids_noftfy"`
		} `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &f))
	require.NotEmpty(t, f.Cases)
	for _, c := range f.Cases {
		tok.Mode = NormFtfy
		require.Equal(t, c.IDsFtfy, tok.Encode(c.Prompt), "ftfy %q %q", c.Prompt, tok.Tokenize(c.Prompt))
		tok.Mode = NormBasic
		require.Equal(t, c.IDsNoFtfy, tok.Encode(c.Prompt), "basic %q %q", c.Prompt, tok.Tokenize(c.Prompt))
	}
}

func gz(data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func TestTokenizerLoadErrors(t *testing.T) {
	vocab, merges := synthFiles(synthMerges)
	write := func(dir string, files map[string][]byte) {
		for n, d := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, n), d, 0o644))
		}
	}
	for _, c := range []struct {
		name  string
		files map[string][]byte
		want  []string
	}{
		{"ok", map[string][]byte{"vocab.json": vocab, "merges.txt": merges}, nil},
		{"no vocab", map[string][]byte{"merges.txt": merges}, []string{"vocab.json", "no such file"}},
		{"no merges", map[string][]byte{"vocab.json": vocab}, []string{"merges.txt", "no such file"}},
		{"vocab syntax", map[string][]byte{"vocab.json": []byte("{\n\"a\": 1,\n\"b\" 2}"), "merges.txt": merges}, []string{"vocab.json line 3", "invalid character"}},
		{"vocab type", map[string][]byte{"vocab.json": []byte("{\n\"a\": \"x\"}"), "merges.txt": merges}, []string{"vocab.json line 2"}},
		{"vocab negative", map[string][]byte{"vocab.json": []byte(`{"a": -1}`), "merges.txt": merges}, []string{"vocab.json", "negative id"}},
		{"merge fields", map[string][]byte{"vocab.json": vocab, "merges.txt": []byte("#version: 0.2\nh e\nl l x\n")}, []string{"merges.txt line 3", "two symbols"}},
		{"merge blank", map[string][]byte{"vocab.json": vocab, "merges.txt": []byte("#version: 0.2\nh e\n\nl l\n")}, []string{"merges.txt line 3"}},
		{"merge not in vocab", map[string][]byte{"vocab.json": vocab, "merges.txt": []byte("#version: 0.2\nh e\nq z\n")}, []string{"merges.txt line 3", `"qz"`, "not in"}},
		{"merges utf8", map[string][]byte{"vocab.json": vocab, "merges.txt": []byte("#version: 0.2\nh e\n\xff e\n")}, []string{"merges.txt line 3", "UTF-8"}},
		{"merges empty", map[string][]byte{"vocab.json": vocab, "merges.txt": []byte(" \n")}, []string{"merges.txt", "empty"}},
		{"config json", map[string][]byte{"vocab.json": vocab, "merges.txt": merges, "tokenizer_config.json": []byte("{\n\n,}")}, []string{"tokenizer_config.json line 3"}},
		{"special missing", map[string][]byte{"vocab.json": vocab, "merges.txt": merges, "special_tokens_map.json": []byte(`{"bos_token": "<s>"}`)}, []string{"bos token", `"<s>"`, "vocab.json"}},
		{"special bad", map[string][]byte{"vocab.json": vocab, "merges.txt": merges, "special_tokens_map.json": []byte(`{"eos_token": 5}`)}, []string{"special_tokens_map.json", "eos_token"}},
		{"added id clash", map[string][]byte{"vocab.json": vocab, "merges.txt": merges, "tokenizer_config.json": []byte(`{"added_tokens_decoder": {"3": {"content": "<|endoftext|>"}}}`)}, []string{"<|endoftext|>", "id 3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(dir, c.files)
			tok, err := Load(dir)
			if c.want == nil {
				require.NoError(t, err)
				require.NotNil(t, tok)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestTokenizerConfig(t *testing.T) {
	vocab, merges := synthFiles(synthMerges)
	var enc map[string]int
	require.NoError(t, json.Unmarshal(vocab, &enc))
	enc["<pad>"] = len(enc)
	vocab, _ = json.Marshal(enc)
	cfg := `{"model_max_length": 64, "pad_token": "<|endoftext|>", "bos_token": {"content": "<|startoftext|>"},
		"added_tokens_decoder": {"700": {"content": "<extra>", "special": true}}}`
	stm := `{"pad_token": {"content": "<pad>", "lstrip": false}}`
	tok, err := New(Source{Vocab: bytes.NewReader(vocab), Merges: bytes.NewReader(merges),
		TokenizerConfig: strings.NewReader(cfg), SpecialTokensMap: strings.NewReader(stm)})
	require.NoError(t, err)
	require.Equal(t, 64, tok.MaxLength)
	require.Equal(t, enc["<pad>"], tok.Pad, "special_tokens_map.json wins over tokenizer_config.json")
	ids, _ := tok.EncodePadded("hello", 0)
	require.Len(t, ids, 64)
	require.Equal(t, tok.Pad, ids[63])
	require.Equal(t, 701, tok.VocabSize())
	// Added tokens are split out before cleaning, case-sensitively.
	require.Equal(t, []string{"a</w>", "<extra>", "b</w>", "<</w>", "e", "x", "t", "r", "a</w>", "></w>"}, tok.Tokenize("A<extra>B <EXTRA>"))
	require.Equal(t, "a b", tok.Decode(tok.Encode("A<extra>B")))
}

func TestTokenizerOpenAIReader(t *testing.T) {
	vocab, merges := synthFiles(synthMerges)
	want, err := FromReaders(bytes.NewReader(vocab), bytes.NewReader(merges))
	require.NoError(t, err)
	got, err := FromOpenAI(bytes.NewReader(gz(merges)))
	require.NoError(t, err)
	require.Equal(t, want.encoder, got.encoder)
	require.Equal(t, want.ranks, got.ranks)

	_, err = FromOpenAI(bytes.NewReader(merges))
	require.ErrorContains(t, err, "bpe_simple_vocab_16e6.txt.gz")
	_, err = FromOpenAI(bytes.NewReader(gz([]byte("#v\na b\nc\n"))))
	require.ErrorContains(t, err, "line 3")
	_, err = LoadOpenAI(filepath.Join(t.TempDir(), "missing.txt.gz"))
	require.ErrorContains(t, err, "missing.txt.gz")
}

func TestTokenizerNestedEscapes(t *testing.T) {
	// ftfy repeats its fixers until nothing changes: 150 levels unwrap.
	require.Equal(t, "<", fixText("&amp;"+strings.Repeat("amp;", 150)+"lt;"))
}

func TestTokenizerConcurrent(t *testing.T) {
	tok := synthTokenizer(t)
	want := tok.Encode("hello the world xxxx abc")
	done := make(chan []int)
	for g := range 4 {
		go func() {
			var got []int
			for i := range 200 {
				tok.Encode(fmt.Sprintf("word%d hello", g*1000+i))
				got = tok.Encode("hello the world xxxx abc")
			}
			done <- got
		}()
	}
	for range 4 {
		require.Equal(t, want, <-done)
	}
}

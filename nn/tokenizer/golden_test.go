package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// dataDir returns the first existing directory, or skips the test (fails
// under CI) when none exists.
func dataDir(t testing.TB, what string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			return c
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found (tried %q)", what, candidates)
	}
	t.Skipf("%s not found (tried %q)", what, candidates)
	return ""
}

// goldenDir is $RETRACE_GOLDEN, else testdata/golden at the repo root,
// else the shared fixtures beside the worktree.
func goldenDir(t testing.TB) string {
	if env := os.Getenv("RETRACE_GOLDEN"); env != "" {
		return dataDir(t, "golden fixtures", env)
	}
	return dataDir(t, "golden fixtures", "../../testdata/golden", "../../../shared/fixtures")
}

// vocabDir holds the real CLIP BPE (vocab.json, merges.txt and
// bpe_simple_vocab_16e6.txt.gz).
func vocabDir(t testing.TB) string {
	if env := os.Getenv("RETRACE_CLIP_VOCAB"); env != "" {
		return dataDir(t, "CLIP BPE vocab", env)
	}
	cands := []string{"../../../shared/fixtures/clip_bpe"}
	if g := os.Getenv("RETRACE_GOLDEN"); g != "" {
		cands = append([]string{filepath.Join(g, "clip_bpe")}, cands...)
	} else {
		cands = append([]string{"../../testdata/golden/clip_bpe"}, cands...)
	}
	return dataDir(t, "CLIP BPE vocab", cands...)
}

type tokenizerCase struct {
	Prompt               string   `json:"prompt"`
	InputIDsFtfy         []int    `json:"input_ids_ftfy"`
	IDsUntruncatedFtfy   []int    `json:"ids_untruncated_ftfy"`
	TokensFtfy           []string `json:"tokens_ftfy"`
	InputIDsNoFtfy       []int    `json:"input_ids_noftfy"`
	IDsUntruncatedNoFtfy []int    `json:"ids_untruncated_noftfy"`
	TokensNoFtfy         []string `json:"tokens_noftfy"`
	OpenAIIDs            []int    `json:"openai_simple_tokenizer_ids"`
	OpenAIEqualsFtfy     bool     `json:"openai_equals_ftfy"`
	Truncated            bool     `json:"truncated"`
}

func loadCases(t *testing.T) []tokenizerCase {
	path := filepath.Join(goldenDir(t), "clip_tokenizer", "tokenizer_cases.json")
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) && os.Getenv("CI") == "" {
		t.Skipf("%s not found", path)
	}
	require.NoError(t, err)
	var f struct {
		Cases []tokenizerCase `json:"cases"`
	}
	require.NoError(t, json.Unmarshal(data, &f))
	require.NotEmpty(t, f.Cases)
	return f.Cases
}

// TestGoldenTokenizerCases checks every prompt of clip_tokenizer against
// transformers' CLIPTokenizer with and without ftfy, through both loaders.
func TestGoldenTokenizerCases(t *testing.T) {
	cases := loadCases(t)
	dir := vocabDir(t)
	hf, err := Load(dir)
	require.NoError(t, err)
	oa, err := LoadOpenAI(filepath.Join(dir, "bpe_simple_vocab_16e6.txt.gz"))
	require.NoError(t, err)
	require.Equal(t, 49408, hf.VocabSize())
	require.Equal(t, hf.VocabSize(), oa.VocabSize())
	require.Equal(t, hf.encoder, oa.encoder, "vocab.json and the openai file give different vocabularies")
	require.Equal(t, hf.ranks, oa.ranks)

	for name, tok := range map[string]*Tokenizer{"vocab.json": hf, "openai": oa} {
		require.Equal(t, []int{49406, 49407, 49407, 49407}, []int{tok.BOS, tok.EOS, tok.Pad, tok.Unk})
		require.Equal(t, 77, tok.MaxLength)
		for i, c := range cases {
			label := fmt.Sprintf("%s case %d %q", name, i, c.Prompt)
			tok.Mode = NormFtfy
			require.Equal(t, c.TokensFtfy, tok.Tokenize(c.Prompt), label)
			require.Equal(t, c.IDsUntruncatedFtfy, tok.Encode(c.Prompt), label)
			ids, truncated := tok.EncodePadded(c.Prompt, 77)
			require.Equal(t, c.InputIDsFtfy, ids, label)
			require.Equal(t, c.Truncated, truncated, label)
			ids, _ = tok.EncodePadded(c.Prompt, 0)
			require.Equal(t, c.InputIDsFtfy, ids, label)
			if c.OpenAIEqualsFtfy {
				require.Equal(t, c.OpenAIIDs, c.IDsUntruncatedFtfy[1:len(c.IDsUntruncatedFtfy)-1], label)
			}

			tok.Mode = NormBasic
			require.Equal(t, c.TokensNoFtfy, tok.Tokenize(c.Prompt), label+" (no ftfy)")
			require.Equal(t, c.IDsUntruncatedNoFtfy, tok.Encode(c.Prompt), label+" (no ftfy)")
			ids, _ = tok.EncodePadded(c.Prompt, 77)
			require.Equal(t, c.InputIDsNoFtfy, ids, label+" (no ftfy)")
			tok.Mode = NormFtfy
		}
	}
}

// TestGoldenTokenizerTiny reproduces clip_text_tiny's in.input_ids with the
// tiny tokenizer folder and the prompts of its meta.json.
func TestGoldenTokenizerTiny(t *testing.T) {
	dir := filepath.Join(goldenDir(t), "clip_text_tiny")
	tok, err := Load(filepath.Join(dir, "tokenizer"))
	require.NoError(t, err)
	require.Equal(t, 1000, tok.VocabSize())
	require.Equal(t, []int{998, 999, 999, 999}, []int{tok.BOS, tok.EOS, tok.Pad, tok.Unk})

	data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	require.NoError(t, err)
	var meta struct {
		Tokenizer struct {
			Prompts []string `json:"prompts"`
		} `json:"tokenizer"`
	}
	require.NoError(t, json.Unmarshal(data, &meta))
	require.NotEmpty(t, meta.Tokenizer.Prompts)

	ids, shape := readI64(t, filepath.Join(dir, "io.safetensors"), "in.input_ids")
	require.Equal(t, []int{len(meta.Tokenizer.Prompts), 77}, shape)
	for i, p := range meta.Tokenizer.Prompts {
		got, truncated := tok.EncodePadded(p, 77)
		require.False(t, truncated)
		require.Equal(t, ids[i*77:(i+1)*77], got, "prompt %d %q", i, p)
	}
	short, shape := readI64(t, filepath.Join(dir, "io.safetensors"), "in.input_ids_short")
	require.Equal(t, 1, shape[0])
	require.Equal(t, ids[:shape[1]], short, "in.input_ids_short is a prefix of row 0")
}

// readI64 reads one I64 tensor from a safetensors file.
func readI64(t *testing.T, path, name string) ([]int, []int) {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(data), 8)
	n := binary.LittleEndian.Uint64(data)
	require.LessOrEqual(t, n, uint64(len(data)-8))
	var header map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data[8:8+n], &header))
	var info struct {
		Dtype   string `json:"dtype"`
		Shape   []int  `json:"shape"`
		Offsets [2]int `json:"data_offsets"`
	}
	raw, ok := header[name]
	require.True(t, ok, "%s has no %s", path, name)
	require.NoError(t, json.Unmarshal(raw, &info))
	require.Equal(t, "I64", info.Dtype)
	body := data[8+n:]
	require.LessOrEqual(t, info.Offsets[1], len(body))
	buf := body[info.Offsets[0]:info.Offsets[1]]
	out := make([]int, len(buf)/8)
	for i := range out {
		out[i] = int(int64(binary.LittleEndian.Uint64(buf[8*i:])))
	}
	count := 1
	for _, d := range info.Shape {
		count *= d
	}
	require.Equal(t, count, len(out))
	return out, info.Shape
}

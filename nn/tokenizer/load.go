package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// maxMerges is how many merges CLIP uses: lines [1 : 49152-256-2+1] of the
// merges file (the first line is the "#version" header), in both
// transformers and openai's simple_tokenizer.
const maxMerges = 49152 - 256 - 2

// Source is a diffusers/transformers tokenizer folder as readers.
type Source struct {
	// Vocab (vocab.json) and Merges (merges.txt) are required.
	Vocab, Merges io.Reader
	// TokenizerConfig (tokenizer_config.json) and SpecialTokensMap
	// (special_tokens_map.json) are optional; special_tokens_map.json wins
	// where both name a token, as in transformers.
	TokenizerConfig, SpecialTokensMap io.Reader
	// Names used in error messages; default to the usual file names.
	VocabName, MergesName, TokenizerConfigName, SpecialTokensMapName string
}

// FromReaders builds a tokenizer from vocab.json and merges.txt contents
// with CLIP's special tokens and max length 77.
func FromReaders(vocabJSON, merges io.Reader) (*Tokenizer, error) {
	return New(Source{Vocab: vocabJSON, Merges: merges})
}

// Load reads a diffusers "tokenizer/" folder: vocab.json and merges.txt,
// plus special_tokens_map.json and tokenizer_config.json when present.
func Load(dir string) (*Tokenizer, error) {
	src := Source{
		VocabName:            filepath.Join(dir, "vocab.json"),
		MergesName:           filepath.Join(dir, "merges.txt"),
		TokenizerConfigName:  filepath.Join(dir, "tokenizer_config.json"),
		SpecialTokensMapName: filepath.Join(dir, "special_tokens_map.json"),
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func(name string, optional bool) (io.Reader, error) {
		f, err := os.Open(name)
		if err != nil {
			if optional && errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		files = append(files, f)
		return f, nil
	}
	var err error
	if src.Vocab, err = open(src.VocabName, false); err != nil {
		return nil, err
	}
	if src.Merges, err = open(src.MergesName, false); err != nil {
		return nil, err
	}
	if src.TokenizerConfig, err = open(src.TokenizerConfigName, true); err != nil {
		return nil, err
	}
	if src.SpecialTokensMap, err = open(src.SpecialTokensMapName, true); err != nil {
		return nil, err
	}
	return New(src)
}

// New builds a tokenizer from a Source. The merge results must all be in
// the vocabulary, as they are in every CLIP tokenizer (a vocab.json and a
// merges.txt from different tokenizers are reported).
func New(src Source) (*Tokenizer, error) {
	name := func(n, def string) string {
		if n == "" {
			return def
		}
		return n
	}
	vocabName := name(src.VocabName, "vocab.json")
	mergesName := name(src.MergesName, "merges.txt")
	if src.Vocab == nil || src.Merges == nil {
		return nil, errors.New("tokenizer: Source needs both Vocab and Merges")
	}
	encoder, err := parseVocab(src.Vocab, vocabName)
	if err != nil {
		return nil, err
	}
	merges, lines, err := parseMerges(src.Merges, mergesName)
	if err != nil {
		return nil, err
	}
	for i, m := range merges {
		if _, ok := encoder[m.a+m.b]; !ok {
			return nil, fmt.Errorf("tokenizer: %s line %d: merge result %q is not in %s",
				mergesName, lines[i], m.a+m.b, vocabName)
		}
	}
	sp := defaultSpecials()
	if src.TokenizerConfig != nil {
		if err := sp.read(src.TokenizerConfig, name(src.TokenizerConfigName, "tokenizer_config.json"), true); err != nil {
			return nil, err
		}
	}
	if src.SpecialTokensMap != nil {
		if err := sp.read(src.SpecialTokensMap, name(src.SpecialTokensMapName, "special_tokens_map.json"), false); err != nil {
			return nil, err
		}
	}
	return build(encoder, merges, sp, vocabName)
}

// LoadOpenAI reads openai/CLIP's bpe_simple_vocab_16e6.txt.gz.
func LoadOpenAI(path string) (*Tokenizer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer f.Close()
	return fromOpenAI(f, path)
}

// FromOpenAI reads the gzip-compressed openai BPE file from r. The
// vocabulary is built as simple_tokenizer.py builds it: the 256 byte
// symbols, the same with "</w>", the first 48894 merges joined, then
// <|startoftext|> and <|endoftext|>.
func FromOpenAI(r io.Reader) (*Tokenizer, error) {
	return fromOpenAI(r, "bpe_simple_vocab_16e6.txt.gz")
}

func fromOpenAI(r io.Reader, name string) (*Tokenizer, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", name, err)
	}
	// The file holds 262145 lines; only the first maxMerges+1 are used.
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var merges []pair
	line := 0
	for line <= maxMerges && sc.Scan() {
		line++
		if line == 1 {
			continue
		}
		m, err := parseMergeLine(sc.Bytes(), name, line)
		if err != nil {
			// simple_tokenizer splits on "\n" without stripping: a final
			// empty line would be an empty merge; accept it only at EOF.
			if len(bytes.TrimSpace(sc.Bytes())) == 0 && !sc.Scan() && sc.Err() == nil {
				break
			}
			return nil, err
		}
		merges = append(merges, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s line %d: %w", name, line+1, err)
	}
	if line == 0 {
		return nil, fmt.Errorf("tokenizer: %s: empty file", name)
	}
	var vocab []string
	for _, b := range byteOrder() {
		vocab = append(vocab, string(byteEncoder[b]))
	}
	for i := range 256 {
		vocab = append(vocab, vocab[i]+"</w>")
	}
	for _, m := range merges {
		vocab = append(vocab, m.a+m.b)
	}
	vocab = append(vocab, StartOfText, EndOfText)
	encoder := make(map[string]int, len(vocab))
	for id, s := range vocab {
		encoder[s] = id
	}
	return build(encoder, merges, defaultSpecials(), name)
}

// parseVocab reads vocab.json: an object of symbol → id.
func parseVocab(r io.Reader, name string) (map[string]int, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read %s: %w", name, err)
	}
	var enc map[string]int
	if err := json.Unmarshal(data, &enc); err != nil {
		return nil, fmt.Errorf("tokenizer: %s%s: %w", name, jsonLine(data, err), err)
	}
	if len(enc) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: empty vocabulary", name)
	}
	for s, id := range enc {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer: %s: token %q has negative id %d", name, s, id)
		}
	}
	return enc, nil
}

// jsonLine gives " line N" for a JSON syntax or type error.
func jsonLine(data []byte, err error) string {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return ""
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return fmt.Sprintf(" line %d", 1+bytes.Count(data[:off], []byte("\n")))
}

// ParseMerges parses a merges.txt (transformers' format: a "#version"
// first line, then one "a b" pair per line) and returns the merges in rank
// order. Like transformers, the text is stripped, the first line is skipped
// whatever it holds and at most 48894 merges are read. name is used in
// errors.
func ParseMerges(r io.Reader, name string) ([][2]string, error) {
	ms, _, err := parseMerges(r, name)
	if err != nil {
		return nil, err
	}
	out := make([][2]string, len(ms))
	for i, m := range ms {
		out[i] = [2]string{m.a, m.b}
	}
	return out, nil
}

// parseMerges returns the merges and the file line of each.
func parseMerges(r io.Reader, name string) ([]pair, []int, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("tokenizer: read %s: %w", name, err)
	}
	if !utf8.Valid(data) {
		bad := 0
		for len(data[bad:]) > 0 {
			_, n := utf8.DecodeRune(data[bad:])
			if n == 1 && data[bad] >= utf8.RuneSelf {
				break
			}
			bad += n
		}
		return nil, nil, fmt.Errorf("tokenizer: %s line %d: invalid UTF-8", name, 1+bytes.Count(data[:bad], []byte("\n")))
	}
	text := string(data)
	trimmed := strings.TrimLeftFunc(text, pySpace)
	first := 1 + strings.Count(text[:len(text)-len(trimmed)], "\n")
	trimmed = strings.TrimRightFunc(trimmed, pySpace)
	if trimmed == "" {
		return nil, nil, fmt.Errorf("tokenizer: %s: empty file", name)
	}
	lines := strings.Split(trimmed, "\n")[1:]
	if len(lines) > maxMerges {
		lines = lines[:maxMerges]
	}
	merges := make([]pair, 0, len(lines))
	nums := make([]int, 0, len(lines))
	for i, l := range lines {
		m, err := parseMergeLine([]byte(l), name, first+1+i)
		if err != nil {
			return nil, nil, err
		}
		merges = append(merges, m)
		nums = append(nums, first+1+i)
	}
	return merges, nums, nil
}

func parseMergeLine(l []byte, name string, line int) (pair, error) {
	if !utf8.Valid(l) {
		return pair{}, fmt.Errorf("tokenizer: %s line %d: invalid UTF-8", name, line)
	}
	f := strings.FieldsFunc(string(l), pySpace)
	if len(f) != 2 {
		return pair{}, fmt.Errorf("tokenizer: %s line %d: want two symbols separated by a space, got %q", name, line, l)
	}
	return pair{f[0], f[1]}, nil
}

// specials are the special-token settings of a tokenizer folder.
type specials struct {
	bos, eos, pad, unk string
	extra              []string
	addedIDs           map[string]int
	maxLength          int
}

func defaultSpecials() *specials {
	return &specials{bos: StartOfText, eos: EndOfText, pad: EndOfText, unk: EndOfText, maxLength: DefaultMaxLength}
}

// read merges tokenizer_config.json or special_tokens_map.json into sp.
func (sp *specials) read(r io.Reader, name string, isConfig bool) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("tokenizer: read %s: %w", name, err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("tokenizer: %s%s: %w", name, jsonLine(data, err), err)
	}
	for key, dst := range map[string]*string{"bos_token": &sp.bos, "eos_token": &sp.eos, "pad_token": &sp.pad, "unk_token": &sp.unk} {
		raw, ok := cfg[key]
		if !ok || string(raw) == "null" {
			continue
		}
		s, err := tokenContent(raw)
		if err != nil {
			return fmt.Errorf("tokenizer: %s: %s: %w", name, key, err)
		}
		*dst = s
	}
	if raw, ok := cfg["additional_special_tokens"]; ok && string(raw) != "null" {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("tokenizer: %s: additional_special_tokens: %w", name, err)
		}
		for _, it := range list {
			s, err := tokenContent(it)
			if err != nil {
				return fmt.Errorf("tokenizer: %s: additional_special_tokens: %w", name, err)
			}
			sp.extra = append(sp.extra, s)
		}
	}
	if !isConfig {
		return nil
	}
	if raw, ok := cfg["added_tokens_decoder"]; ok {
		var dec map[string]json.RawMessage
		if err := json.Unmarshal(raw, &dec); err != nil {
			return fmt.Errorf("tokenizer: %s: added_tokens_decoder: %w", name, err)
		}
		for k, v := range dec {
			var id int
			if _, err := fmt.Sscanf(k, "%d", &id); err != nil || id < 0 || fmt.Sprint(id) != k {
				return fmt.Errorf("tokenizer: %s: added_tokens_decoder: bad id %q", name, k)
			}
			s, err := tokenContent(v)
			if err != nil {
				return fmt.Errorf("tokenizer: %s: added_tokens_decoder[%s]: %w", name, k, err)
			}
			if sp.addedIDs == nil {
				sp.addedIDs = make(map[string]int)
			}
			sp.addedIDs[s] = id
		}
	}
	if raw, ok := cfg["model_max_length"]; ok {
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("tokenizer: %s: model_max_length: %w", name, err)
		}
		// transformers writes 1e30-ish "VERY_LARGE_INTEGER" when unset.
		if v >= 2 && v <= 1<<20 {
			sp.maxLength = int(v)
		}
	}
	return nil
}

// tokenContent reads a special token written as a string or as an
// AddedToken object {"content": ...}.
func tokenContent(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return "", errors.New("empty token")
		}
		return s, nil
	}
	var obj struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj.Content == nil || *obj.Content == "" {
		return "", fmt.Errorf("want a string or {\"content\": ...}, got %s", raw)
	}
	return *obj.Content, nil
}

func build(encoder map[string]int, merges []pair, sp *specials, vocabName string) (*Tokenizer, error) {
	for s, id := range sp.addedIDs {
		if old, ok := encoder[s]; ok && old != id {
			return nil, fmt.Errorf("tokenizer: added token %q has id %d in tokenizer_config.json but %d in %s", s, id, old, vocabName)
		}
		encoder[s] = id
	}
	t := &Tokenizer{
		MaxLength: sp.maxLength,
		encoder:   encoder,
		decoder:   make(map[int]string, len(encoder)),
		ranks:     make(map[pair]int, len(merges)),
		addedSet:  make(map[string]bool),
		cache:     make(map[string][]string),
	}
	for s, id := range encoder {
		// On duplicate ids keep one deterministically.
		if old, ok := t.decoder[id]; !ok || s < old {
			t.decoder[id] = s
		}
		if id >= t.vocabSize {
			t.vocabSize = id + 1
		}
	}
	for rank, m := range merges {
		t.ranks[m] = rank // a repeated merge keeps its last rank, as dict(zip(...))
	}
	for _, st := range []struct {
		what string
		tok  string
		dst  *int
	}{{"bos", sp.bos, &t.BOS}, {"eos", sp.eos, &t.EOS}, {"pad", sp.pad, &t.Pad}, {"unk", sp.unk, &t.Unk}} {
		id, ok := encoder[st.tok]
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s token %q is not in %s", st.what, st.tok, vocabName)
		}
		*st.dst = id
	}
	added := append([]string{sp.bos, sp.eos, sp.pad, sp.unk}, sp.extra...)
	for s := range sp.addedIDs {
		added = append(added, s)
	}
	for _, s := range added {
		if _, ok := encoder[s]; !ok {
			return nil, fmt.Errorf("tokenizer: special token %q is not in %s", s, vocabName)
		}
		if !t.addedSet[s] {
			t.addedSet[s] = true
			t.added = append(t.added, s)
			t.addedFirst[s[0]] = true
		}
	}
	// Longest first, so a token that is a prefix of another loses.
	sort.SliceStable(t.added, func(i, j int) bool { return len(t.added[i]) > len(t.added[j]) })
	return t, nil
}

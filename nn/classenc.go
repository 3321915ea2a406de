package nn

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"retrace/nn/safetensors"
)

// ClassPromptConfig is text_encoder/config.json of a class-conditional
// model (retrace's default Fashion-MNIST model, tools/train): the
// vocabulary and the shape of each class's conditioning sequence.
type ClassPromptConfig struct {
	ClassName string   `json:"_class_name"`
	Classes   []string `json:"classes"`
	Tokens    int      `json:"tokens"`
	Dim       int      `json:"dim"`
}

// ClassPromptEncoder is the "text encoder" of a class-conditional model: a
// learned sequence of Tokens vectors of width Dim per class (the UNet's
// encoder_hidden_states), plus a null class (row len(Classes)) used for the
// empty prompt and classifier-free guidance. Weight: embedding.weight
// [len(Classes)+1, Tokens·Dim].
//
// A prompt selects a class by a case-insensitive match of a class name
// anywhere in it ("a red Ankle Boot" → "ankle boot"; '-' and ' ' are
// interchangeable, so "t shirt" matches "t-shirt"). Of overlapping matches
// the longest wins ("t-shirt" over "shirt"); names of two different classes
// in one prompt are an error, as is a prompt naming no class.
type ClassPromptEncoder struct {
	Config ClassPromptConfig
	table  []float32 // [len(Classes)+1, Tokens·Dim], host memory (tiny)
}

// NewClassPromptEncoder checks cfg against the table and builds the encoder.
func NewClassPromptEncoder(cfg ClassPromptConfig, table []float32) (*ClassPromptEncoder, error) {
	n := len(cfg.Classes)
	switch {
	case n == 0:
		return nil, fmt.Errorf("class encoder: config has no classes")
	case cfg.Tokens <= 0 || cfg.Dim <= 0:
		return nil, fmt.Errorf("class encoder: config tokens=%d dim=%d must be positive", cfg.Tokens, cfg.Dim)
	case len(table) != (n+1)*cfg.Tokens*cfg.Dim:
		return nil, fmt.Errorf("class encoder: embedding.weight has %d values, want [%d, %d] (%d classes + null, %d tokens × %d)", len(table), n+1, cfg.Tokens*cfg.Dim, n, cfg.Tokens, cfg.Dim)
	}
	seen := map[string]bool{}
	for _, c := range cfg.Classes {
		k := normClass(c)
		if k == "" || seen[k] {
			return nil, fmt.Errorf("class encoder: class name %q is empty or repeated", c)
		}
		seen[k] = true
	}
	return &ClassPromptEncoder{Config: cfg, table: table}, nil
}

// LoadClassPromptEncoderDir loads a text_encoder folder: config.json with
// _class_name "ClassPromptEncoder" and model.safetensors holding exactly
// embedding.weight.
func LoadClassPromptEncoderDir(dir string) (*ClassPromptEncoder, error) {
	var cfg ClassPromptConfig
	if err := readJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return nil, fmt.Errorf("class encoder: %w", err)
	}
	if cfg.ClassName != "ClassPromptEncoder" {
		return nil, fmt.Errorf("class encoder: %s holds a %q, not a ClassPromptEncoder", dir, cfg.ClassName)
	}
	f, err := safetensors.Open(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, fmt.Errorf("class encoder: %w", err)
	}
	defer f.Close()
	const key = "embedding.weight"
	for _, name := range f.Names() {
		if name != key {
			return nil, fmt.Errorf("class encoder: unknown weight %q (want only %s)", name, key)
		}
	}
	info, ok := f.Info(key)
	if !ok {
		return nil, fmt.Errorf("class encoder: %s has no %s", dir, key)
	}
	if want := []int{len(cfg.Classes) + 1, cfg.Tokens * cfg.Dim}; len(info.Shape) != 2 || info.Shape[0] != want[0] || info.Shape[1] != want[1] {
		return nil, fmt.Errorf("class encoder: %s is %v, want %v (%d classes + null, %d tokens × %d)", key, info.Shape, want, len(cfg.Classes), cfg.Tokens, cfg.Dim)
	}
	table, err := f.Float32(key)
	if err != nil {
		return nil, fmt.Errorf("class encoder: %w", err)
	}
	return NewClassPromptEncoder(cfg, table)
}

// Null is the index of the null (unconditional) class.
func (e *ClassPromptEncoder) Null() int { return len(e.Config.Classes) }

// Vocabulary lists the class names, in class-index order.
func (e *ClassPromptEncoder) Vocabulary() []string { return append([]string(nil), e.Config.Classes...) }

func normClass(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "-", " "))
	return strings.Join(strings.Fields(s), " ")
}

// ClassOf maps a prompt to a class index; "" (or only spaces) is the null
// class.
func (e *ClassPromptEncoder) ClassOf(prompt string) (int, error) {
	p := normClass(prompt)
	if p == "" {
		return e.Null(), nil
	}
	type match struct{ class, start, end int }
	var ms []match
	for i, c := range e.Config.Classes {
		k := normClass(c)
		for off := 0; ; {
			j := strings.Index(p[off:], k)
			if j < 0 {
				break
			}
			ms = append(ms, match{i, off + j, off + j + len(k)})
			off += j + 1
		}
	}
	// Longest first; a match inside a longer one is dropped.
	sort.SliceStable(ms, func(a, b int) bool { return ms[a].end-ms[a].start > ms[b].end-ms[b].start })
	var kept []match
	for _, m := range ms {
		inside := false
		for _, k := range kept {
			if m.start >= k.start && m.end <= k.end {
				inside = true
				break
			}
		}
		if !inside {
			kept = append(kept, m)
		}
	}
	if len(kept) == 0 {
		return 0, fmt.Errorf("class encoder: prompt %q names no class; the vocabulary is %s (or \"\" for none)", prompt, e.quoted())
	}
	for _, k := range kept[1:] {
		if k.class != kept[0].class {
			return 0, fmt.Errorf("class encoder: prompt %q names both %q and %q; use one of %s", prompt, e.Config.Classes[kept[0].class], e.Config.Classes[k.class], e.quoted())
		}
	}
	return kept[0].class, nil
}

func (e *ClassPromptEncoder) quoted() string {
	q := make([]string, len(e.Config.Classes))
	for i, c := range e.Config.Classes {
		q[i] = fmt.Sprintf("%q", c)
	}
	return strings.Join(q, ", ")
}

// EncodeClass returns the conditioning [1, Tokens, Dim] of class index c
// (Null() for the unconditional one).
func (e *ClassPromptEncoder) EncodeClass(be Backend, c int) (*Tensor, error) {
	if c < 0 || c > e.Null() {
		return nil, fmt.Errorf("class encoder: class %d out of range [0, %d]", c, e.Null())
	}
	n := e.Config.Tokens * e.Config.Dim
	t := be.Upload([]int{1, e.Config.Tokens, e.Config.Dim}, e.table[c*n:(c+1)*n])
	if err := be.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// Encode maps the prompt to its class (see ClassOf) and returns the
// conditioning [1, Tokens, Dim].
func (e *ClassPromptEncoder) Encode(be Backend, prompt string) (*Tensor, error) {
	c, err := e.ClassOf(prompt)
	if err != nil {
		return nil, err
	}
	return e.EncodeClass(be, c)
}

// Free is a no-op (the table lives in host memory); it makes the encoder
// interchangeable with the CLIP text encoder.
func (e *ClassPromptEncoder) Free() {}

package nn

import (
	"fmt"
	"math"
	"path/filepath"
)

// CLIPTextConfig is the config.json of transformers' CLIPTextModel (the
// Stable Diffusion text_encoder/).
type CLIPTextConfig struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	VocabSize             int      `json:"vocab_size"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	HiddenAct             string   `json:"hidden_act"`
	LayerNormEps          float32  `json:"layer_norm_eps"`
	BosTokenID            int      `json:"bos_token_id"`
	EosTokenID            int      `json:"eos_token_id"`
	PadTokenID            int      `json:"pad_token_id"`
}

type clipLayer struct {
	LN1, LN2       *LayerNorm
	Q, K, V, Out   *Linear
	FC1, FC2       *Linear
	act            UnaryOp
	heads, headDim int
}

// CLIPTextModel is transformers' CLIPTextModel.
type CLIPTextModel struct {
	Config   CLIPTextConfig
	TokenEmb *Tensor // [vocab, hidden]
	PosEmb   *Tensor // [max_positions, hidden]
	Layers   []*clipLayer
	FinalLN  *LayerNorm
	weights  []*Tensor
}

// CLIPTextOutput holds the encoder's outputs for input ids [B, L].
type CLIPTextOutput struct {
	// LastHiddenState [B, L, hidden], after the final layer norm: what
	// Stable Diffusion feeds the UNet.
	LastHiddenState *Tensor
	// Pooled [B, hidden]: LastHiddenState at the end-of-text token.
	Pooled *Tensor
	// HiddenStates[i] [B, L, hidden]: the embeddings (i = 0) and each
	// layer's output before the final layer norm ("clip skip"); only
	// filled when asked for.
	HiddenStates []*Tensor
}

// Free releases every tensor.
func (o *CLIPTextOutput) Free() {
	Free(o.LastHiddenState, o.Pooled)
	Free(o.HiddenStates...)
}

func clipAct(name string) (UnaryOp, error) {
	switch name {
	case "quick_gelu", "":
		return QuickGELU, nil
	case "gelu":
		return GELU, nil
	case "gelu_new", "gelu_pytorch_tanh":
		return GELUTanh, nil
	}
	return 0, fmt.Errorf("clip: hidden_act %q is not supported", name)
}

// LoadCLIPTextModel builds the text encoder. Weight names are transformers'
// ("text_model.encoder.layers.0.self_attn.q_proj.weight"); the
// position_ids buffer of older checkpoints is ignored.
func LoadCLIPTextModel(cfg CLIPTextConfig, w *Weights) (*CLIPTextModel, error) {
	if cfg.LayerNormEps == 0 {
		cfg.LayerNormEps = 1e-5
	}
	if cfg.MaxPositionEmbeddings == 0 {
		cfg.MaxPositionEmbeddings = 77
	}
	act, err := clipAct(cfg.HiddenAct)
	if err != nil {
		return nil, err
	}
	d := cfg.HiddenSize
	switch {
	case d <= 0 || cfg.VocabSize <= 0 || cfg.NumHiddenLayers <= 0 || cfg.IntermediateSize <= 0:
		return nil, fmt.Errorf("clip: config needs hidden_size, vocab_size, num_hidden_layers and intermediate_size")
	case cfg.NumAttentionHeads <= 0 || d%cfg.NumAttentionHeads != 0:
		return nil, fmt.Errorf("clip: hidden_size %d does not split into %d heads", d, cfg.NumAttentionHeads)
	}
	w.Ignore = append(w.Ignore, "text_model.embeddings.position_ids")
	// Embedding tables are gathered, not multiplied: keep them f32.
	storage := w.Storage
	w.Storage = F32
	root := w.Root().Sub("text_model")
	m := &CLIPTextModel{Config: cfg}
	m.TokenEmb = root.Tensor("embeddings.token_embedding.weight", cfg.VocabSize, d)
	m.PosEmb = root.Tensor("embeddings.position_embedding.weight", cfg.MaxPositionEmbeddings, d)
	w.Storage = storage
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		s := root.Sub("encoder.layers", i)
		m.Layers = append(m.Layers, &clipLayer{
			LN1:     LoadLayerNorm(s, "layer_norm1", d, cfg.LayerNormEps),
			Q:       LoadLinear(s, "self_attn.q_proj", d, d, true),
			K:       LoadLinear(s, "self_attn.k_proj", d, d, true),
			V:       LoadLinear(s, "self_attn.v_proj", d, d, true),
			Out:     LoadLinear(s, "self_attn.out_proj", d, d, true),
			LN2:     LoadLayerNorm(s, "layer_norm2", d, cfg.LayerNormEps),
			FC1:     LoadLinear(s, "mlp.fc1", d, cfg.IntermediateSize, true),
			FC2:     LoadLinear(s, "mlp.fc2", cfg.IntermediateSize, d, true),
			act:     act,
			heads:   cfg.NumAttentionHeads,
			headDim: d / cfg.NumAttentionHeads,
		})
	}
	m.FinalLN = LoadLayerNorm(root, "final_layer_norm", d, cfg.LayerNormEps)
	if err := w.Finish(); err != nil {
		Free(w.Loaded()...)
		return nil, fmt.Errorf("clip: %w", err)
	}
	m.weights = w.Loaded()
	return m, nil
}

// Free releases the weights.
func (m *CLIPTextModel) Free() { Free(m.weights...); m.weights = nil }

func (l *clipLayer) forward(be Backend, h *Tensor) *Tensor {
	n := l.LN1.Forward(be, h)
	q, k, v := l.Q.Forward(be, n), l.K.Forward(be, n), l.V.Forward(be, n)
	Free(n)
	a := be.Attention(q, k, v, l.heads, float32(1/math.Sqrt(float64(l.headDim))), true)
	Free(q, k, v)
	o := l.Out.Forward(be, a)
	Free(a)
	h1 := be.Binary(Add, h, o)
	Free(o)
	n = l.LN2.Forward(be, h1)
	f := l.FC1.Forward(be, n)
	Free(n)
	g := be.Unary(l.act, f)
	Free(f)
	f2 := l.FC2.Forward(be, g)
	Free(g)
	h2 := be.Binary(Add, h1, f2)
	Free(h1, f2)
	return h2
}

// Forward encodes token ids (B rows of equal length L ≤
// max_position_embeddings). With hidden set, every layer's output is kept.
func (m *CLIPTextModel) Forward(be Backend, ids [][]int, hidden bool) (*CLIPTextOutput, error) {
	if err := be.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 || len(ids[0]) == 0 {
		return nil, fmt.Errorf("clip: no token ids")
	}
	b, l, d := len(ids), len(ids[0]), m.Config.HiddenSize
	if l > m.Config.MaxPositionEmbeddings {
		return nil, fmt.Errorf("clip: %d tokens exceed the model's %d positions (prompts are limited to %d tokens)", l, m.Config.MaxPositionEmbeddings, m.Config.MaxPositionEmbeddings)
	}
	flat := make([]int, 0, b*l)
	for i, row := range ids {
		if len(row) != l {
			return nil, fmt.Errorf("clip: row %d has %d ids, row 0 has %d", i, len(row), l)
		}
		for j, id := range row {
			if id < 0 || id >= m.Config.VocabSize {
				return nil, fmt.Errorf("clip: token id %d at [%d,%d] is outside the vocabulary of %d", id, i, j, m.Config.VocabSize)
			}
		}
		flat = append(flat, row...)
	}
	pos := make([]int, l)
	for i := range pos {
		pos[i] = i
	}
	tok := be.Gather(m.TokenEmb, flat)
	pe := be.Gather(m.PosEmb, pos)
	t3 := Reshape(tok, b, l, d)
	h := be.Binary(Add, t3, pe)
	Free(tok, pe, t3)
	out := &CLIPTextOutput{}
	if hidden {
		out.HiddenStates = append(out.HiddenStates, h)
	}
	for _, layer := range m.Layers {
		n := layer.forward(be, h)
		if !hidden {
			Free(h)
		}
		h = n
		if hidden {
			out.HiddenStates = append(out.HiddenStates, h)
		}
	}
	out.LastHiddenState = m.FinalLN.Forward(be, h)
	if !hidden {
		Free(h)
	}
	// Pooled output: transformers takes argmax(ids) when eos_token_id is 2
	// (the legacy SD-1.x configs, where <|endoftext|> is the largest id),
	// else the first position holding eos_token_id.
	rows := make([]int, b)
	for i, row := range ids {
		idx := 0
		if m.Config.EosTokenID == 2 {
			for j, id := range row {
				if id > row[idx] {
					idx = j
				}
			}
		} else {
			idx = -1
			for j, id := range row {
				if id == m.Config.EosTokenID {
					idx = j
					break
				}
			}
			if idx < 0 {
				idx = l - 1
			}
		}
		rows[i] = i*l + idx
	}
	flatH := Reshape(out.LastHiddenState, b*l, d)
	out.Pooled = be.Gather(flatH, rows)
	Free(flatH)
	if err := be.Err(); err != nil {
		out.Free()
		return nil, err
	}
	return out, nil
}

// LoadCLIPTextModelDir loads a text_encoder/ folder (config.json +
// model.safetensors).
func LoadCLIPTextModelDir(be Backend, dir string, storage DType) (*CLIPTextModel, error) {
	var cfg CLIPTextConfig
	if err := readJSON(filepath.Join(dir, "config.json"), &cfg); err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	if cfg.ModelType != "" && cfg.ModelType != "clip_text_model" {
		return nil, fmt.Errorf("clip: %s holds a %q model, not clip_text_model", dir, cfg.ModelType)
	}
	src, closer, err := openWeightsDir(dir)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	defer closer()
	w := NewWeights(be, src)
	w.Storage = storage
	return LoadCLIPTextModel(cfg, w)
}

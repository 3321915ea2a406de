package nn

// Backend executes ops on tensors it owns. Two implementations exist: GPU
// (WGSL kernels on a WebGPU device) and CPU (the pure-Go reference). Models
// are written once against this interface.
//
// Errors are sticky: an op that fails (bad shapes, mixed backends, exceeded
// device limits, lost device) records the first error, returns nil, and
// every later op given a nil input returns nil. Check Err after a forward
// pass; ClearErr resets it.
type Backend interface {
	Name() string // "gpu" or "cpu"
	Err() error
	ClearErr()
	setErr(err error)

	// Upload copies float32 data into a new F32 tensor.
	Upload(shape []int, data []float32) *Tensor
	// UploadF16 stores half-precision bits as an F16 tensor (weights).
	UploadF16(shape []int, bits []uint16) *Tensor
	// Zeros returns a new F32 tensor of zeros.
	Zeros(shape []int) *Tensor
	// Read returns t's values as float32 (waits for pending GPU work).
	Read(t *Tensor) ([]float32, error)
	// Sync waits for all submitted work.
	Sync() error

	// MatMul multiplies the last two axes: a [..., M, K] (or [..., K, M]
	// when transA) times b [..., K, N] (or [..., N, K] when transB). Leading
	// axes must be equal, or b may have none (broadcast over a's batch).
	MatMul(a, b *Tensor, transA, transB bool) *Tensor
	// Linear computes x·Wᵀ + bias for x [..., in], w [out, in] (F32 or F16),
	// bias [out] or nil.
	Linear(x, w, bias *Tensor) *Tensor
	// Conv2d convolves x [N, Cin, H, W] with w [Cout, Cin, KH, KW] (F32 or
	// F16) and adds bias [Cout] (may be nil).
	Conv2d(x, w, bias *Tensor, p Conv2dParams) *Tensor
	// GroupNorm normalises x [N, C, ...] over groups of C/groups channels
	// and all spatial positions, applies gamma/beta [C] (may be nil), and
	// SiLU when silu is set.
	GroupNorm(x, gamma, beta *Tensor, groups int, eps float32, silu bool) *Tensor
	// LayerNorm normalises over the last axis with gamma/beta (may be nil).
	LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor
	// Softmax over the last axis.
	Softmax(x *Tensor) *Tensor
	// Attention computes softmax(q·kᵀ·scale [+ causal mask])·v per head for
	// q [B, Lq, H·D], k and v [B, Lk, H·D] → [B, Lq, H·D]. Scores are never
	// materialised beyond one tile per workgroup.
	Attention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor
	// Unary applies an elementwise activation.
	Unary(op UnaryOp, x *Tensor) *Tensor
	// GEGLU splits the last axis of x [..., 2N] into (h, gate) and returns
	// h · GELU(gate) [..., N] (diffusers GEGLU, erf GELU).
	GEGLU(x *Tensor) *Tensor
	// Binary applies op elementwise with NumPy broadcasting (rank ≤ 6).
	Binary(op BinaryOp, a, b *Tensor) *Tensor
	// Axpby returns a·x + b·y for same-shaped x, y.
	Axpby(a float32, x *Tensor, b float32, y *Tensor) *Tensor
	// Affine returns x·mul + add.
	Affine(x *Tensor, mul, add float32) *Tensor
	// Clamp limits x to [lo, hi].
	Clamp(x *Tensor, lo, hi float32) *Tensor
	// Concat joins tensors along axis (all other axes equal).
	Concat(axis int, ts ...*Tensor) *Tensor
	// Upsample2x is nearest-neighbour 2× upsampling of x [N, C, H, W].
	Upsample2x(x *Tensor) *Tensor
	// Permute reorders axes (rank ≤ 6): out.shape[i] = x.shape[perm[i]].
	Permute(x *Tensor, perm ...int) *Tensor
	// TimestepEmbedding is diffusers' get_timestep_embedding for t [B]
	// (float32, fractional allowed) → [B, dim].
	TimestepEmbedding(t *Tensor, dim int, flipSinToCos bool, downscaleFreqShift float32, scale float32, maxPeriod float32) *Tensor
	// Gather returns rows ids of table [V, D] as [len(ids), D] (embedding
	// lookup). Every id must be in [0, V).
	Gather(table *Tensor, ids []int) *Tensor
	// Reduce reduces all elements of x to a [1] tensor.
	Reduce(op ReduceOp, x *Tensor) *Tensor
	// SquaredError returns Σ(a−b)² as a [1] tensor.
	SquaredError(a, b *Tensor) *Tensor
}

// Conv2dParams are a 2-D convolution's stride and zero padding. Padding may
// be asymmetric (the AutoencoderKL downsampler pads (0,1,0,1)).
type Conv2dParams struct {
	StrideH, StrideW                     int
	PadTop, PadBottom, PadLeft, PadRight int
}

// Conv2dSame returns stride s with symmetric padding p.
func Conv2dSame(s, p int) Conv2dParams {
	return Conv2dParams{StrideH: s, StrideW: s, PadTop: p, PadBottom: p, PadLeft: p, PadRight: p}
}

// OutSize returns the output height and width for an h×w input and kh×kw kernel.
func (p Conv2dParams) OutSize(h, w, kh, kw int) (int, int) {
	sh, sw := max(p.StrideH, 1), max(p.StrideW, 1)
	return (h+p.PadTop+p.PadBottom-kh)/sh + 1, (w+p.PadLeft+p.PadRight-kw)/sw + 1
}

// UnaryOp names an elementwise activation.
type UnaryOp uint8

const (
	SiLU      UnaryOp = iota // x·σ(x)
	GELU                     // exact, x·Φ(x) (erf)
	GELUTanh                 // tanh approximation
	QuickGELU                // x·σ(1.702x) (CLIP)
	ReLU
	Tanh
	Sigmoid
	Exp
	Neg
	Abs
	Sqrt
	Square
)

var unaryNames = [...]string{"silu", "gelu", "gelu_tanh", "quick_gelu", "relu", "tanh", "sigmoid", "exp", "neg", "abs", "sqrt", "square"}

func (o UnaryOp) String() string {
	if int(o) < len(unaryNames) {
		return unaryNames[o]
	}
	return "unary?"
}

// BinaryOp names an elementwise binary op.
type BinaryOp uint8

const (
	Add BinaryOp = iota
	Sub
	Mul
	Div
	Max
	Min
)

var binaryNames = [...]string{"add", "sub", "mul", "div", "max", "min"}

func (o BinaryOp) String() string {
	if int(o) < len(binaryNames) {
		return binaryNames[o]
	}
	return "binary?"
}

// ReduceOp names a full reduction.
type ReduceOp uint8

const (
	Sum ReduceOp = iota
	Mean
	MaxAbs
)

var reduceNames = [...]string{"sum", "mean", "max_abs"}

func (o ReduceOp) String() string {
	if int(o) < len(reduceNames) {
		return reduceNames[o]
	}
	return "reduce?"
}

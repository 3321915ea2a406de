// Shared by attention_reg and attention_tiled: parameters, bindings and the
// masked-score constant. Needs: D (head dim).
struct P {
  nb: u32,     // batches in this dispatch
  lq: u32,     // query rows per batch in this dispatch
  lk: u32,     // keys per batch
  heads: u32,
  hd: u32,     // heads·D: the row stride of q, k, v, out
  row0: u32,   // query index (within its batch) of this dispatch's row 0, for the causal mask
  causal: u32,
  nx: u32,     // workgroups along x (flat id = x + y·nx)
  qbs: u32,    // element stride between batches in the q / out bindings
  kbs: u32,    // element stride between batches in the k / v bindings
  bq: u32,     // element base of q / k / v / out inside their bindings
  bk: u32,
  bv: u32,
  bo: u32,
  scale: f32,
  k0: u32,     // keys [k0, k1) are folded in by this dispatch
  k1: u32,
  first: u32,  // k0 == 0: start from empty state
  last: u32,   // k1 == lk: write the normalised output
  _pad: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;
@group(0) @binding(5) var<storage, read_write> ml: array<f32>; // (m, l) per (batch, head, row) of this dispatch

const MASKED: f32 = -3.0e38;
const D4: u32 = D / 4u * 4u; // the d loops run 4 at a time, then the rest

// Embedding lookup from a q8 table (rows = token ids): out[i, j] =
// dequantized table[ids[i], j]. Ids arrive as f32 (exact below 2^24).
// Specialised by QG (elements per group).
struct P { n: u32, d: u32, oi: u32, oo: u32, row_words: u32, groups: u32, qsbase: u32, nx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> qw: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;

//#include quant_q8_inc

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  let row = u32(ids[p.oi + i / p.d]);
  o[p.oo + i] = dq(row * p.row_words, p.qsbase + row * p.groups, i % p.d);
}

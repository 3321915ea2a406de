// Embedding lookup: out[i, j] = table[ids[i], j]. Ids arrive as f32 (exact
// below 2^24). Specialised by F16: the table holds packed halves.
struct P { n: u32, d: u32, ot: u32, oi: u32, oo: u32, row_base: u32, nx: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<f32>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.x + wg.y * p.nx) * 256u + li;
  if (i >= p.n) { return; }
  let row = u32(ids[p.oi + i / p.d]) - p.row_base;
  let e = row * p.d + i % p.d;
  var v: f32;
  if (F16) {
    v = unpack2x16float(table[e / 2u])[e % 2u];
  } else {
    v = bitcast<f32>(table[p.ot + e]);
  }
  o[p.oo + i] = v;
}

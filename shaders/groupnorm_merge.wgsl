// GroupNorm pass 2 of 3: one workgroup per group merges its k partial
// (count, mean, M2) triples (Chan et al.) and writes (mean, 1/√(var+eps)).
const WG = 256u;
struct P {
  k: u32,     // partials per group
  nx: u32,    // workgroups along x (flat id = x + y·nx)
  ng: u32,    // groups (N·groups)
  eps: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>; // [group]·2

var<workgroup> sn: array<f32, WG>;
var<workgroup> sm: array<f32, WG>;
var<workgroup> sq: array<f32, WG>;

// merge folds (nb, mb, qb) into the running (n, m, q).
fn merge(a: vec3<f32>, nb: f32, mb: f32, qb: f32) -> vec3<f32> {
  let nt = a.x + nb;
  if (nb == 0.0) { return a; }
  let delta = mb - a.y;
  return vec3<f32>(nt, a.y + delta * (nb / nt), a.z + qb + delta * delta * (a.x * nb / nt));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let g = wg.x + wg.y * p.nx;
  if (g >= p.ng) { return; } // uniform: the whole workgroup leaves
  var a = vec3<f32>(0.0);
  for (var j = li; j < p.k; j = j + WG) {
    let o = (g * p.k + j) * 3u;
    a = merge(a, part[o], part[o + 1u], part[o + 2u]);
  }
  sn[li] = a.x;
  sm[li] = a.y;
  sq[li] = a.z;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (li < st) {
      let r = merge(vec3<f32>(sn[li], sm[li], sq[li]), sn[li + st], sm[li + st], sq[li + st]);
      sn[li] = r.x;
      sm[li] = r.y;
      sq[li] = r.z;
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    stats[2u * g] = sm[0];
    stats[2u * g + 1u] = 1.0 / sqrt(sq[0] / sn[0] + p.eps);
  }
}

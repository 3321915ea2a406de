// GroupNorm pass 1 of 3: partial statistics. Groups are contiguous runs of
// m = (C/groups)·H·W elements; each workgroup takes one chunk of `ch`
// elements of one group and writes (count, mean, M2) for it.
// Within a thread values are accumulated shifted by the chunk's first
// element (Σd, Σd² with d = x − shift, so no catastrophic cancellation when
// |mean| ≫ std); threads are merged with Chan et al.'s pairwise update.
const WG = 256u;
struct P {
  m: u32,     // elements per group
  k: u32,     // chunks per group
  ch: u32,    // elements per chunk
  nx: u32,    // workgroups along x (flat id = x + y·nx)
  ox: u32,    // element base of x's first group (of this dispatch) in its binding
  g0: u32,    // absolute index (n·groups + g) of this dispatch's first group
  ng: u32,    // groups in this dispatch
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>; // [group·k + chunk]·3

var<workgroup> sn: array<f32, WG>;
var<workgroup> sm: array<f32, WG>;
var<workgroup> sq: array<f32, WG>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let w = wg.x + wg.y * p.nx;
  if (w >= p.ng * p.k) { return; } // uniform: the whole workgroup leaves
  let gl = w / p.k;
  let kk = w - gl * p.k;
  let first = p.ox + gl * p.m + kk * p.ch;
  let cnt = min(p.ch, p.m - kk * p.ch);
  let shift = x[first];
  var s = 0.0;
  var q = 0.0;
  var c = 0u;
  for (var j = li; j < cnt; j = j + WG) {
    let d = x[first + j] - shift;
    s = s + d;
    q = q + d * d;
    c = c + 1u;
  }
  let n = f32(c);
  var mean = 0.0;
  var m2 = 0.0;
  if (c > 0u) {
    mean = s / n;
    m2 = max(q - s * mean, 0.0);
  }
  sn[li] = n;
  sm[li] = mean;
  sq[li] = m2;
  workgroupBarrier();
  for (var st = WG / 2u; st > 0u; st = st >> 1u) {
    if (li < st) {
      let na = sn[li];
      let nb = sn[li + st];
      let nt = na + nb;
      if (nb > 0.0) {
        let delta = sm[li + st] - sm[li];
        sm[li] = sm[li] + delta * (nb / nt);
        sq[li] = sq[li] + sq[li + st] + delta * delta * (na * nb / nt);
        sn[li] = nt;
      }
    }
    workgroupBarrier();
  }
  if (li == 0u) {
    let o = ((p.g0 + gl) * p.k + kk) * 3u;
    part[o] = sn[0];
    part[o + 1u] = sm[0] + shift;
    part[o + 2u] = sq[0];
  }
}

// Tiled attention for real GPUs: softmax(q·kᵀ·scale [+ causal mask])·v per
// head, online ("flash") softmax.
// Specialised by: D (head dim), BK (keys per tile; 2·BK·D floats must fit
// workgroup memory).
// A workgroup owns 64 consecutive query rows of one (batch, head), one row
// per invocation (q row, running max/sum and accumulator in registers). It
// walks the keys [k0, k1) in tiles of BK: the tile's K and V rows are loaded
// into workgroup memory cooperatively, then every invocation folds the tile
// into its row. Only BK scores per row exist at any time.
// A long key axis may be split over several dispatches (on CPU adapters):
// between them the unnormalised accumulator lives in `o` and (m, l) in `ml`.
//#include attention_inc

const BQ: u32 = 64u;
const BKD: u32 = BK * D; // array sizes must be plain identifiers for naga

var<workgroup> ks: array<f32, BKD>;
var<workgroup> vs: array<f32, BKD>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let nt = (p.lq + BQ - 1u) / BQ;
  let w = wg.x + wg.y * p.nx;
  if (w >= p.nb * p.heads * nt) { return; } // uniform per workgroup
  let tile = w % nt;
  let bh = w / nt;
  let h = bh % p.heads;
  let b = bh / p.heads;
  let i = tile * BQ + li;
  let valid = i < p.lq;
  let ir = min(i, p.lq - 1u);

  // naga hoists locals and zeroes them once: every array is set explicitly.
  var qr: array<f32, D>;
  var acc: array<f32, D>;
  let qb = p.bq + b * p.qbs + ir * p.hd + h * D;
  let ob = p.bo + b * p.qbs + ir * p.hd + h * D;
  let st = (bh * p.lq + ir) * 2u;
  var m = MASKED;
  var l = 0.0;
  if (p.first == 0u) {
    m = ml[st];
    l = ml[st + 1u];
  }
  for (var d = 0u; d < D; d++) {
    qr[d] = q[qb + d];
    acc[d] = select(o[ob + d], 0.0, p.first != 0u);
  }
  // Keys this row may see, and (uniform) keys any row of the tile may see.
  var kend = p.k1;
  var kwg = p.k1;
  if (p.causal != 0u) {
    kend = min(p.k1, p.row0 + i + 1u);
    kwg = min(p.k1, p.row0 + min(tile * BQ + BQ, p.lq));
  }
  if (!valid) { kend = 0u; }
  let kb = p.bk + b * p.kbs + h * D;
  let vb = p.bv + b * p.kbs + h * D;

  for (var j0 = p.k0; j0 < kwg; j0 += BK) {
    let nk = min(BK, kwg - j0);
    for (var e = li; e < nk * D; e += BQ) {
      let off = (j0 + e / D) * p.hd + e % D;
      ks[e] = k[kb + off];
      vs[e] = v[vb + off];
    }
    workgroupBarrier();
    let mine = min(nk, kend - min(kend, j0));
    if (mine > 0u) {
      var s: array<f32, BK>;
      var bm = m;
      for (var jj = 0u; jj < mine; jj++) {
        let x = jj * D;
        var sd = 0.0;
        for (var d = 0u; d < D4; d += 4u) {
          sd += dot(vec4<f32>(qr[d], qr[d + 1u], qr[d + 2u], qr[d + 3u]),
                    vec4<f32>(ks[x + d], ks[x + d + 1u], ks[x + d + 2u], ks[x + d + 3u]));
        }
        for (var d = D4; d < D; d++) { sd += qr[d] * ks[x + d]; }
        s[jj] = sd * p.scale;
        bm = max(bm, s[jj]);
      }
      let corr = exp(m - bm);
      l *= corr;
      for (var d = 0u; d < D; d++) { acc[d] *= corr; }
      m = bm;
      for (var jj = 0u; jj < mine; jj++) {
        let pj = exp(s[jj] - m);
        l += pj;
        let x = jj * D;
        for (var d = 0u; d < D4; d += 4u) {
          acc[d] += pj * vs[x + d];
          acc[d + 1u] += pj * vs[x + d + 1u];
          acc[d + 2u] += pj * vs[x + d + 2u];
          acc[d + 3u] += pj * vs[x + d + 3u];
        }
        for (var d = D4; d < D; d++) { acc[d] += pj * vs[x + d]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    var f = 1.0;
    if (p.last != 0u) {
      f = 1.0 / l;
    } else {
      ml[st] = m;
      ml[st + 1u] = l;
    }
    for (var d = 0u; d < D; d++) { o[ob + d] = acc[d] * f; }
  }
}

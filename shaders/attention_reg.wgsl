// Attention without workgroup memory or barriers (for CPU adapters):
// softmax(q·kᵀ·scale [+ causal mask])·v per head, online ("flash") softmax.
// Specialised by: D (head dim), ROWS (query rows per invocation), KB (keys
// per online-softmax block).
// Each invocation owns ROWS consecutive query rows of one (batch, head): their
// q rows, running max m, running sum l and accumulators stay in private
// memory while it loops over the keys [k0, k1), KB keys at a time (one
// rescale of the accumulators per block). Only KB scores per row exist.
// A long key axis may be split over several dispatches (lavapipe ends every
// invocation's loops after 65535 iterations in total): between them the
// unnormalised accumulator lives in `o` and (m, l) in `ml`.
//#include attention_inc

const RD: u32 = ROWS * D; // array sizes must be plain identifiers for naga
const RKB: u32 = ROWS * KB;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ng = (p.lq + ROWS - 1u) / ROWS;
  let t = (wg.x + wg.y * p.nx) * 64u + li;
  if (t >= p.nb * p.heads * ng) { return; }
  let g = t % ng;
  let bh = t / ng;
  let h = bh % p.heads;
  let b = bh / p.heads;
  let i0 = g * ROWS;
  let nr = min(ROWS, p.lq - i0);

  // naga hoists locals and zeroes them once: every array is set explicitly.
  var qr: array<f32, RD>;
  var acc: array<f32, RD>;
  var m: array<f32, ROWS>;
  var l: array<f32, ROWS>;
  for (var r = 0u; r < ROWS; r++) {
    // Rows past the end repeat the last row; they are never written.
    let ir = min(i0 + r, p.lq - 1u);
    let qb = p.bq + b * p.qbs + ir * p.hd + h * D;
    let ob = p.bo + b * p.qbs + ir * p.hd + h * D;
    let s = (bh * p.lq + ir) * 2u;
    if (p.first != 0u) {
      m[r] = MASKED;
      l[r] = 0.0;
    } else {
      m[r] = ml[s];
      l[r] = ml[s + 1u];
    }
    for (var d = 0u; d < D; d++) {
      qr[r * D + d] = q[qb + d];
      acc[r * D + d] = select(o[ob + d], 0.0, p.first != 0u);
    }
  }
  // Keys below kend are allowed for at least one of this invocation's rows
  // (key 0 is allowed for every row, so each row has a finite max after the
  // first block).
  var kend = p.k1;
  if (p.causal != 0u) { kend = min(p.k1, p.row0 + i0 + nr); }
  let kb = p.bk + b * p.kbs + h * D;
  let vb = p.bv + b * p.kbs + h * D;

  for (var j0 = p.k0; j0 < kend; j0 += KB) {
    let nk = min(KB, kend - j0);
    var s: array<f32, RKB>;
    var bm = m;
    for (var jj = 0u; jj < nk; jj++) {
      let j = j0 + jj;
      var sd: array<f32, ROWS>;
      for (var r = 0u; r < ROWS; r++) { sd[r] = 0.0; }
      let kr = kb + j * p.hd;
      for (var d = 0u; d < D4; d += 4u) {
        let k4 = vec4<f32>(k[kr + d], k[kr + d + 1u], k[kr + d + 2u], k[kr + d + 3u]);
        for (var r = 0u; r < ROWS; r++) {
          let x = r * D + d;
          sd[r] += dot(vec4<f32>(qr[x], qr[x + 1u], qr[x + 2u], qr[x + 3u]), k4);
        }
      }
      for (var d = D4; d < D; d++) {
        let kv = k[kr + d];
        for (var r = 0u; r < ROWS; r++) { sd[r] += qr[r * D + d] * kv; }
      }
      for (var r = 0u; r < ROWS; r++) {
        var sc = sd[r] * p.scale;
        if (p.causal != 0u && j > p.row0 + i0 + r) { sc = MASKED; }
        s[r * KB + jj] = sc;
        bm[r] = max(bm[r], sc);
      }
    }
    for (var r = 0u; r < ROWS; r++) {
      let corr = exp(m[r] - bm[r]);
      l[r] *= corr;
      for (var d = 0u; d < D; d++) { acc[r * D + d] *= corr; }
      m[r] = bm[r];
    }
    for (var jj = 0u; jj < nk; jj++) {
      var pj: array<f32, ROWS>;
      for (var r = 0u; r < ROWS; r++) {
        pj[r] = exp(s[r * KB + jj] - m[r]);
        l[r] += pj[r];
      }
      let vr = vb + (j0 + jj) * p.hd;
      for (var d = 0u; d < D4; d += 4u) {
        let v0 = v[vr + d];
        let v1 = v[vr + d + 1u];
        let v2 = v[vr + d + 2u];
        let v3 = v[vr + d + 3u];
        for (var r = 0u; r < ROWS; r++) {
          let x = r * D + d;
          acc[x] += pj[r] * v0;
          acc[x + 1u] += pj[r] * v1;
          acc[x + 2u] += pj[r] * v2;
          acc[x + 3u] += pj[r] * v3;
        }
      }
      for (var d = D4; d < D; d++) {
        let vv = v[vr + d];
        for (var r = 0u; r < ROWS; r++) { acc[r * D + d] += pj[r] * vv; }
      }
    }
  }
  for (var r = 0u; r < nr; r++) {
    let ob = p.bo + b * p.qbs + (i0 + r) * p.hd + h * D;
    var f = 1.0;
    if (p.last != 0u) {
      f = 1.0 / l[r];
    } else {
      let s = (bh * p.lq + i0 + r) * 2u;
      ml[s] = m[r];
      ml[s + 1u] = l[r];
    }
    for (var d = 0u; d < D; d++) { o[ob + d] = acc[r * D + d] * f; }
  }
}

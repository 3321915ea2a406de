// Conv2d NCHW as an implicit GEMM (M = output channels, N = output pixels,
// K = Cin·KH·KW) with workgroup-memory tiles, for real GPUs. A workgroup of
// 16×16 invocations computes 64 output channels × 64 output pixels; per step
// of 16 along K it stages the weight tile and the gathered input tile (the
// im2col tile exists only in workgroup memory, with zero padding applied as
// it is gathered), then each invocation accumulates 4 channels × 4 pixels.
//
// Specialised by: KH, KW, SH, SW (u32 kernel size and stride), WF16, BF16
// (weights / bias are f16 packed two per u32, else f32 bits), BOUNDS
// (unused). Parameters and channel-group accumulation are as in
// conv2d_reg.wgsl.
struct P {
  cin: u32,   // input channels in this group
  h: u32,
  w: u32,
  oh: u32,
  ow: u32,
  cout: u32,  // output channels in this dispatch
  krow: u32,  // weight elements per output channel (Cin_total·KH·KW)
  kofs: u32,  // first weight element of this channel group in a row (ci0·KH·KW)
  pt: i32,    // top / left padding
  pl: i32,
  xb: u32,    // element bases inside the bindings (wb: weight row of channel 0)
  wb: u32,
  bb: u32,
  ob: u32,
  xns: u32,   // per-sample element strides of x and out in their bindings
  ons: u32,
  flags: u32, // bit 0: add bias; bit 1: accumulate into out
  _p0: u32,
  _p1: u32,
  _p2: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wt: array<u32>;
@group(0) @binding(3) var<storage, read> bs: array<u32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const KK = KH * KW;

fn weight(e: u32) -> f32 {
  if (WF16) {
    return unpack2x16float(wt[e >> 1u])[e & 1u];
  }
  return bitcast<f32>(wt[e]);
}

fn bias(e: u32) -> f32 {
  if (BF16) {
    return unpack2x16float(bs[e >> 1u])[e & 1u];
  }
  return bitcast<f32>(bs[e]);
}

var<workgroup> ta: array<f32, 1024>; // [16 k][64 channels]
var<workgroup> tb: array<f32, 1024>; // [16 k][64 pixels]

fn store(co: u32, px0: u32, ohw: u32, obase: u32, a: vec4<f32>) {
  if (co >= p.cout) {
    return;
  }
  var b = 0.0;
  if ((p.flags & 1u) != 0u) {
    b = bias(p.bb + co);
  }
  for (var j = 0u; j < 4u; j++) {
    let px = px0 + j * 16u;
    if (px < ohw) {
      let i = obase + co * ohw + px;
      var v = a[j] + b;
      if ((p.flags & 2u) != 0u) {
        v += o[i];
      }
      o[i] = v;
    }
  }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let ohw = p.oh * p.ow;
  let co0 = wg.y * 64u;
  let p0 = wg.x * 64u;
  let n = wg.z;
  let tx = li % 16u;
  let ty = li / 16u;
  let kdim = p.cin * KK;
  let xs = p.xb + n * p.xns;
  // The input column this invocation gathers (the same for its 4 loads).
  let pb = p0 + li % 64u;
  let pok = pb < ohw;
  let pc = min(pb, ohw - 1u);
  let oh = pc / p.ow;
  let ihb = i32(oh * SH) - p.pt;
  let iwb = i32((pc - oh * p.ow) * SW) - p.pl;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  for (var kt = 0u; kt < kdim; kt += 16u) {
    for (var r = 0u; r < 4u; r++) {
      // weights: k = li % 16, channel m = li / 16 + 16r
      let m = ty + 16u * r;
      let ka = kt + tx;
      var wv = 0.0;
      if (ka < kdim && co0 + m < p.cout) {
        wv = weight(p.wb + (co0 + m) * p.krow + p.kofs + ka);
      }
      ta[tx * 64u + m] = wv;
      // inputs: k = li / 64 + 4r, pixel column li % 64
      let kr = li / 64u + 4u * r;
      let kb = kt + kr;
      var xv = 0.0;
      if (kb < kdim && pok) {
        let ci = kb / KK;
        let rr = kb - ci * KK;
        let kh = rr / KW;
        let ih = ihb + i32(kh);
        let iw = iwb + i32(rr - kh * KW);
        if (ih >= 0 && ih < i32(p.h) && iw >= 0 && iw < i32(p.w)) {
          xv = x[xs + ci * p.h * p.w + u32(ih) * p.w + u32(iw)];
        }
      }
      tb[kr * 64u + li % 64u] = xv;
    }
    workgroupBarrier();
    for (var k = 0u; k < 16u; k++) {
      let wa = vec4<f32>(ta[k * 64u + ty * 4u], ta[k * 64u + ty * 4u + 1u], ta[k * 64u + ty * 4u + 2u], ta[k * 64u + ty * 4u + 3u]);
      let xq = vec4<f32>(tb[k * 64u + tx], tb[k * 64u + tx + 16u], tb[k * 64u + tx + 32u], tb[k * 64u + tx + 48u]);
      a0 += wa.x * xq;
      a1 += wa.y * xq;
      a2 += wa.z * xq;
      a3 += wa.w * xq;
    }
    workgroupBarrier();
  }
  let obase = p.ob + n * p.ons;
  let co = co0 + ty * 4u;
  store(co, p0 + tx, ohw, obase, a0);
  store(co + 1u, p0 + tx, ohw, obase, a1);
  store(co + 2u, p0 + tx, ohw, obase, a2);
  store(co + 3u, p0 + tx, ohw, obase, a3);
}

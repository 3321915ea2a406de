// Shared by the conv2d kernels: bias and output stores.
// Needs: KH, KW, BF16 (bias is f16 packed two per u32, else f32 bits), and
// from the kernel: p.cout, p.bb, p.flags (bit 0: add bias; bit 1: accumulate
// into out), bindings bs (bias) and o (out).

const KK = KH * KW;

fn bias(e: u32) -> f32 {
  if (BF16) {
    return unpack2x16float(bs[e >> 1u])[e & 1u];
  }
  return bitcast<f32>(bs[e]);
}

// biasOf is the bias of output channel co, or 0 without bias.
fn biasOf(co: u32) -> f32 {
  if ((p.flags & 1u) != 0u) {
    return bias(p.bb + co);
  }
  return 0.0;
}

// put writes v to out element i, added to what is there when a later
// channel group accumulates.
fn put(i: u32, v: f32) {
  var r = v;
  if ((p.flags & 2u) != 0u) {
    r += o[i];
  }
  o[i] = r;
}

// store writes a (+ bias) to output channel co at pixels px0 + j·step,
// j < 4, of those below ohw; obase is the sample's first out element.
fn store(co: u32, px0: u32, step: u32, ohw: u32, obase: u32, a: vec4<f32>) {
  if (co >= p.cout) {
    return;
  }
  let b = biasOf(co);
  for (var j = 0u; j < 4u; j++) {
    let px = px0 + j * step;
    if (px < ohw) {
      put(obase + co * ohw + px, a[j] + b);
    }
  }
}

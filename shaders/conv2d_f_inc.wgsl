// Shared by conv2d_reg, conv2d_k3 and conv2d_tiled (weights f32 or f16):
// the parameter block, the bindings and the weight loader.
// Needs: WF16 (weights are f16 packed two per u32, else f32 bits).
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

fn weight(e: u32) -> f32 {
  if (WF16) {
    return unpack2x16float(wt[e >> 1u])[e & 1u];
  }
  return bitcast<f32>(wt[e]);
}

// Prints QR module matrices made by the npm package qrcode (byte mode) as
// the JSON fixture samplers/watermark/qr/testdata/qrcode_npm.json.
// Usage: cd /tmp/qrnpm && npm install qrcode@1 && node gen.js > qrcode_npm.json
const QRCode = require('qrcode')
const version = require('qrcode/package.json').version
const bin = Array.from({ length: 20 }, (_, i) => (i * 37 + 5) & 0xff)
const cases = [
  // [payload (string or byte array), level, version, mask (-1: qrcode's choice)]
  ['rtrc-01', 'L', 1, 0], ['rtrc-01', 'M', 1, 1], ['rtrc-01', 'Q', 1, 2], ['rtrc-01', 'H', 1, 3],
  ['hello world', 'L', 2, 4], ['hello world', 'M', 2, 5], ['hello world', 'Q', 2, 6], ['hello world', 'H', 2, 7],
  ['https://example.com/retrace?id=42', 'L', 3, 0], ['https://example.com/r?id=42', 'M', 3, 3],
  ['retrace watermark QR v3-Q', 'Q', 3, 5], ['retrace v3-H payload', 'H', 3, 7],
  ['retrace: a QR code of version four, level L', 'L', 4, 1], ['retrace: version four at level M', 'M', 4, 2],
  ['h\u00e9llo \u2713 unicode QR', 'Q', 4, 4], [bin, 'H', 4, 6],
  ['', 'M', 1, 4], ['x', 'H', 2, 2],
  // qrcode's own mask choice
  ['rtrc-01', 'M', 1, -1], ['rtrc-02', 'H', 1, -1], ['hello world', 'Q', 2, -1],
  ['https://example.com/retrace?id=42', 'L', 3, -1], ['retrace v3-H payload', 'H', 3, -1],
  ['retrace: version four at level M', 'M', 4, -1], [bin, 'H', 4, -1], ['x', 'L', 4, -1],
]
const out = { generator: `qrcode@${version} (npm), QRCode.create([{data, mode: 'byte'}], {errorCorrectionLevel, version, maskPattern, toSJISFunc: undefined})`, cases: [] }
for (const [payload, level, v, mask] of cases) {
  const opts = { errorCorrectionLevel: level, version: v, toSJISFunc: undefined }
  if (mask >= 0) opts.maskPattern = mask
  const q = QRCode.create([{ data: payload, mode: 'byte' }], opts)
  if (q.version !== v) throw new Error(`version ${q.version} != ${v}`)
  const size = q.modules.size
  const rows = []
  for (let r = 0; r < size; r++) {
    let s = ''
    for (let c = 0; c < size; c++) s += q.modules.data[r * size + c] ? '1' : '0'
    rows.push(s)
  }
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload)
  out.cases.push({ data_hex: bytes.toString('hex'), level, version: v, mask, chosen_mask: q.maskPattern, rows })
}
process.stdout.write(JSON.stringify(out, null, 1) + '\n')

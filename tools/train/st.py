"""A tiny safetensors reader/writer (the safetensors package is not used)."""
import json
import struct

import numpy as np

DT = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64", np.dtype(np.uint8): "U8"}
RDT = {v: k for k, v in DT.items()}


def save(path, tensors, metadata=None):
    """tensors: name → numpy array (or torch tensor). Contiguous, sorted by name."""
    arrs = {}
    for k, v in tensors.items():
        if hasattr(v, "detach"):
            v = v.detach().cpu().numpy()
        arrs[k] = np.ascontiguousarray(v)
    header, off = {}, 0
    for k in sorted(arrs):
        a = arrs[k]
        n = a.nbytes
        header[k] = {"dtype": DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + n]}
        off += n
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k in sorted(arrs):
            f.write(arrs[k].astype(arrs[k].dtype.newbyteorder("<"), copy=False).tobytes())


def load(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = np.frombuffer(data[b:e], RDT[v["dtype"]]).reshape(v["shape"]).copy()
    return out

"""The Fashion-MNIST judge: a small CNN classifier that scores generated
images (is this sample of the requested class?).

  judge.py train [--epochs 3]            train on the 60k set, report 10k test accuracy,
                                          write tools/train/judge/{judge.safetensors,config.json}
  judge.py test                          accuracy of the committed weights on the test set
  judge.py classify A.png [B.png ...]    print "<file> <class> <prob>" per image
  judge.py eval DIR                      agreement of `retrace sample-grid --out DIR` samples
                                          with the classes they were asked for (table + DIR/agreement.json)
  judge.py classify --grid G.png --cell 32 --expect CLASS
                                          classify every cell of a grid image; with --expect,
                                          print the agreement with CLASS

Images: grayscale (RGB is averaged), white garment on black as in the data
set, 28×28 or 32×32 (the 2-pixel border of a 32×32 sample is cropped).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data  # noqa: E402
import st  # noqa: E402

JUDGE_DIR = os.path.join(HERE, "judge")


class Judge(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):  # x [N,1,28,28] in [0,1]
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.drop(F.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)


def load_judge():
    w = os.path.join(JUDGE_DIR, "judge.safetensors")
    if not os.path.exists(w):
        sys.exit(f"judge: {w} not found; run `judge.py train`")
    m = Judge()
    m.load_state_dict({k: torch.from_numpy(v) for k, v in st.load(w).items()})
    return m.eval()


def predict(m, x):
    """x float [N,28,28] in [0,1] → (labels, probabilities of the label)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            out.append(torch.softmax(m(torch.from_numpy(x[i:i + 1000]).float()[:, None]), dim=1))
    p = torch.cat(out).numpy()
    return p.argmax(1), p.max(1)


def accuracy(m):
    x, y = data.load("test")
    pred, _ = predict(m, x.astype(np.float32) / 255)
    return float((pred == y).mean())


def train(a):
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    x, y = data.load("train")
    X = torch.from_numpy(x.astype(np.float32) / 255)[:, None]
    Y = torch.from_numpy(y)
    m = Judge()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    t0 = time.time()
    steps = a.epochs * (len(X) // a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    for ep in range(a.epochs):
        m.train()
        perm = torch.from_numpy(rng.permutation(len(X)))
        tot = 0.0
        for i in range(len(X) // a.batch):
            idx = perm[i * a.batch:(i + 1) * a.batch]
            loss = F.cross_entropy(m(X[idx]), Y[idx])
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
            tot += loss.item()
        m.eval()
        print(f"epoch {ep + 1} loss {tot / (len(X) // a.batch):.4f} test acc {accuracy(m):.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    acc = accuracy(m)
    os.makedirs(JUDGE_DIR, exist_ok=True)
    st.save(os.path.join(JUDGE_DIR, "judge.safetensors"), {k: v for k, v in m.state_dict().items()},
            {"test_accuracy": f"{acc:.4f}"})
    with open(os.path.join(JUDGE_DIR, "config.json"), "w") as f:
        json.dump({"classes": data.CLASSES, "input": "1x28x28 grayscale in [0,1] (white garment on black)",
                   "test_accuracy": acc, "epochs": a.epochs, "batch": a.batch, "seed": a.seed,
                   "train_seconds": round(time.time() - t0)}, f, indent=2)
        f.write("\n")
    print(f"judge: test accuracy {acc:.4f} on 10000 images; weights in {JUDGE_DIR}")


def read_png(path):
    from PIL import Image
    im = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255
    return im


def crop(im):
    if im.shape == (32, 32):
        return im[2:30, 2:30]
    if im.shape != (28, 28):
        sys.exit(f"judge: image is {im.shape[1]}x{im.shape[0]}, want 28x28 or 32x32")
    return im


def classify(a):
    m = load_judge()
    if a.grid:
        im = read_png(a.grid)
        c = a.cell
        cells = [crop(im[r:r + c, k:k + c]) for r in range(0, im.shape[0] - c + 1, c)
                 for k in range(0, im.shape[1] - c + 1, c)]
        pred, prob = predict(m, np.stack(cells))
        names = [data.CLASSES[p] for p in pred]
        if a.expect:
            ok = sum(n == a.expect for n in names)
            print(f"{a.grid}: {ok}/{len(names)} classified as {a.expect}")
        else:
            print(" ".join(names))
        return
    ims = np.stack([crop(read_png(p)) for p in a.images])
    pred, prob = predict(m, ims)
    for p, c, q in zip(a.images, pred, prob):
        print(f"{p} {data.CLASSES[c]} {q:.3f}")


def evaluate(a):
    """Agreement of `retrace sample-grid` output: every filled cell of
    <dir>/<class>.png classified, compared with the class it was asked for."""
    with open(os.path.join(a.dir, "samples.json")) as f:
        meta = json.load(f)
    m = load_judge()
    s, cols, done = meta["size"], meta["cols"], meta["done"]
    rows, total, ok_all = [], 0, 0
    confusion = {}
    for cls in meta["classes"]:
        im = read_png(os.path.join(a.dir, cls.replace(" ", "-") + ".png"))
        cells = [crop(im[(k // cols) * s:(k // cols + 1) * s, (k % cols) * s:(k % cols + 1) * s]) for k in range(done)]
        pred, _ = predict(m, np.stack(cells))
        names = [data.CLASSES[p] for p in pred]
        ok = sum(n == cls for n in names)
        wrong = {}
        for n in names:
            if n != cls:
                wrong[n] = wrong.get(n, 0) + 1
        confusion[cls] = wrong
        rows.append((cls, ok, done))
        total += done; ok_all += ok
    print(f"| class | agreement | judged as (when not) |\n| --- | --- | --- |")
    for (cls, ok, n) in rows:
        w = ", ".join(f"{k} {v}" for k, v in sorted(confusion[cls].items(), key=lambda kv: -kv[1]))
        print(f"| {cls} | {ok}/{n} ({100 * ok / n:.1f}%) | {w} |")
    print(f"| **all** | **{ok_all}/{total} ({100 * ok_all / total:.1f}%)** | |")
    res = {"agreement": ok_all / total, "samples": total, "per_class": {c: ok / n for c, ok, n in rows},
           "confusion": confusion, "steps": meta["steps"], "guidance": meta["guidance"], "seed": meta["seed"],
           "judge_test_accuracy": json.load(open(os.path.join(JUDGE_DIR, "config.json")))["test_accuracy"]}
    with open(os.path.join(a.dir, "agreement.json"), "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--seed", type=int, default=7)
    sub.add_parser("test")
    e = sub.add_parser("eval")
    e.add_argument("dir", help="a `retrace sample-grid` output folder (samples.json + <class>.png)")
    c = sub.add_parser("classify")
    c.add_argument("images", nargs="*")
    c.add_argument("--grid")
    c.add_argument("--cell", type=int, default=32)
    c.add_argument("--expect")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "train":
        train(a)
    elif a.cmd == "test":
        print(f"judge: test accuracy {accuracy(load_judge()):.4f}")
    elif a.cmd == "eval":
        evaluate(a)
    else:
        classify(a)


if __name__ == "__main__":
    main()

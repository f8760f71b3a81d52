"""Real image folders (issue 25, part 4): loading and training speed on 10,000 photo-like JPEGs.

On a generated folder (predict_throughput.py's generator: 300-800 px per side, class subfolders),
each measurement in a fresh process, one at a time:
  per-sample   a typical pipeline: a Dataset that opens, converts and resizes one image per item with
               PIL, batched by a DataLoader with 2 workers (what torchvision's ImageFolder does)
  first load   convcoach's load_data at --image-size 64 with an empty cache: parallel threads, JPEG
               draft mode, the decoded cache written
  cached load  the same again: the decoded cache read back
  decode       one thread, 500 images: full decode + resize against draft mode + resize
  training     one epoch of the default net at 64 px from memory, from the memory-mapped cache (the
               path for folders over --memory-limit-gb) and from files decoded by DataLoader workers
               (the path when the cache's disk has no room): training images/s of the loop

    python benchmarks/image_folders.py [--folder DIR] [--images 10000] [--size 64] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PER_SAMPLE = r"""
import json, sys, time
from pathlib import Path
import numpy as np, torch
from PIL import Image
root, size = Path(sys.argv[1]), int(sys.argv[2])
files = sorted(root.rglob("*.jpg"))
classes = sorted({f.parent.name for f in files})
class Folder(torch.utils.data.Dataset):
    def __len__(self):
        return len(files)
    def __getitem__(self, i):
        with Image.open(files[i]) as image:
            array = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
        return torch.from_numpy(array.transpose(2, 0, 1).copy()), classes.index(files[i].parent.name)
start = time.perf_counter()
n = 0
for x, y in torch.utils.data.DataLoader(Folder(), batch_size=256, num_workers=2):
    n += len(x)
took = time.perf_counter() - start
print(json.dumps({"images": n, "seconds": round(took, 1), "images_per_second": round(n / took)}))
"""

LOAD = r"""
import json, sys, time
start = time.perf_counter()
from convcoach.data.sources import SourceOptions, load_data
imported = time.perf_counter()
bundle = load_data("imagefolder:" + sys.argv[1], SourceOptions(image_size=int(sys.argv[2])), val_fraction=0.05)
done = time.perf_counter()
n = len(bundle.train) + len(bundle.val) + len(bundle.test)
print(json.dumps({"images": n, "seconds": round(done - imported, 2), "images_per_second": round(n / (done - imported)),
                  "process_seconds": round(done - start, 2)}))
"""

DECODE = r"""
import json, sys, time
from pathlib import Path
from PIL import Image
import numpy as np
from convcoach.data.imagefolder import load_image
files = sorted(Path(sys.argv[1]).rglob("*.jpg"))[:500]
size = int(sys.argv[2])
def full(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
result = {}
for name, decode in (("full decode + resize", full), ("draft mode + resize", lambda p: load_image(p, 3, (size, size)))):
    start = time.perf_counter()
    for path in files:
        decode(path)
    result[name] = round(len(files) / (time.perf_counter() - start))
print(json.dumps(result))
"""

TRAIN = r"""
import json, sys, time
import convcoach.data.sources as sources
mode, root, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "files":  # as on a disk without room for the decoded cache
    sources.mapped_decode = lambda *args, **kwargs: None
from convcoach import TrainConfig, Trainer
config = TrainConfig(data="imagefolder:" + root, image_size=size, epochs=2, quiet=True, report=False, monitors=False,
                     memory_limit_gb=4.0 if mode == "memory" else 1e-6, out=sys.argv[4], lr=0.1, tta="none")
trainer = Trainer(config)
trainer.fit()
lines = [json.loads(l) for l in open(sys.argv[4] + "/metrics.jsonl") if '"kind": "epoch"' in l]
steps = lines[-1]["step"] - lines[-2]["step"]
seconds = lines[-1]["time"] - lines[-2]["time"]  # the second epoch: no start-up, validation included
train = trainer.data.train
split = "memory-mapped" if train.mapped else ("files" if train.images is None else "memory")
print(json.dumps({"split": split, "images_per_second": round(steps * config.batch_size / seconds),
                  "epoch_seconds": round(seconds, 1), "precision": trainer.precision}))
"""


def child(code: str, *args: str, env: dict | None = None) -> dict:
    import os

    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, help="an existing folder of class subfolders (default: generate one)")
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of per-sample vs first load")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/image_folders.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from predict_throughput import generate
    from utilization import host

    result: dict = {"host": host(), "date": time.strftime("%Y-%m-%d"), "size": args.size}
    folder = args.folder
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="convcoach-folder-"))
        result["generated"] = generate(folder, args.images, 5, 300, 800, seed=0)
    root, size = str(folder), str(args.size)
    for _ in range(args.rounds):  # alternating; the best of each (noise only slows a measurement down)
        env = {"CONVCOACH_CACHE": tempfile.mkdtemp(prefix="convcoach-folder-cache-")}  # empty: a first load
        for name, code, extra in (("per_sample_pipeline", PER_SAMPLE, None), ("first_load", LOAD, env)):
            run = child(code, root, size, env=extra)
            print(name, run, file=sys.stderr, flush=True)
            if run["images_per_second"] > result.get(name, {}).get("images_per_second", 0):
                result[name] = run
    steps = [
        ("cached_load", lambda: child(LOAD, root, size, env=env)),
        ("decode_one_thread", lambda: child(DECODE, root, size)),
        ("train_memory", lambda: child(TRAIN, "memory", root, size, tempfile.mkdtemp() + "/r", env=env)),
        ("train_memory_mapped", lambda: child(TRAIN, "mapped", root, size, tempfile.mkdtemp() + "/r", env=env)),
        ("train_streamed_files", lambda: child(TRAIN, "files", root, size, tempfile.mkdtemp() + "/r", env=env)),
    ]
    for name, measure in steps:
        result[name] = measure()
        print(name, result[name], file=sys.stderr, flush=True)
    base = result["per_sample_pipeline"]["images_per_second"]
    result["first_load_vs_per_sample"] = round(result["first_load"]["images_per_second"] / base, 2)
    memory = result["train_memory"]["images_per_second"]
    result["mapped_vs_memory"] = round(result["train_memory_mapped"]["images_per_second"] / memory, 3)
    result["files_vs_memory"] = round(result["train_streamed_files"]["images_per_second"] / memory, 3)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Cost of the HTML run report: what `train` adds at its end (report from the in-memory model and test
predictions) and what `convcoach report` takes to rebuild it (checkpoint + data load + test pass).

Trains one short default-model run on Fashion-MNIST with the report off, then times each part.
Run: python benchmarks/report_cost.py [--subset 5000] [--epochs 1] [--rounds 3]"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from convcoach import TrainConfig, Trainer
from convcoach.report import RunArtifacts, write_run_report
from convcoach.report.run_files import load_run
from convcoach.report.run_report import load_artifacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--subset", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        trainer = Trainer(
            TrainConfig(data=args.data, subset=args.subset, epochs=args.epochs, out=str(run), quiet=True, report=False)
        )
        start = time.perf_counter()
        summary = trainer.fit()
        train_seconds = time.perf_counter() - start
        test = trainer.evaluate(trainer.loader(trainer.data.test))
        artifacts = RunArtifacts(
            trainer.model, trainer.normalizer, list(trainer.data.classes), trainer.data, test.probabilities, test.labels
        )
        end_of_train, rebuild, load = [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            write_run_report(run, artifacts)
            end_of_train.append(time.perf_counter() - start)
            start = time.perf_counter()
            load_artifacts(load_run(run))
            load.append(time.perf_counter() - start)
            start = time.perf_counter()
            write_run_report(run)
            rebuild.append(time.perf_counter() - start)
        print(
            json.dumps(
                {
                    "data": args.data,
                    "subset": args.subset,
                    "epochs": args.epochs,
                    "test_images": len(test.labels),
                    "train_seconds": round(train_seconds, 2),
                    "test_accuracy": summary["test_accuracy"],
                    "end_of_train_report_seconds": round(statistics.median(end_of_train), 2),
                    "rebuild_seconds": round(statistics.median(rebuild), 2),
                    "of_which_checkpoint_data_and_test_pass": round(statistics.median(load), 2),
                    "report_kib": round((run / "report.html").stat().st_size / 1024),
                    "threads": torch.get_num_threads(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

"""--sampler balanced: every class drawn equally often, seeded, the same order after a mid-epoch resume
(in memory, streamed from files, in a Trainer) and shared among DDP ranks like the random order."""

from __future__ import annotations

import pytest
import torch
from conftest import interrupt_at_step, small_config

from convcoach import Trainer
from convcoach.cli import main
from convcoach.data import BatchLoader, Normalizer, Split
from convcoach.errors import ConfigError
from convcoach.train.checkpoint import load_checkpoint

RAW = Normalizer([0.0], [1 / 255])  # images come out as their uint8 values
LABELS = torch.tensor([0] * 900 + [1] * 100 + [2] * 10)  # 90:10:1


def _split(labels: torch.Tensor = LABELS) -> Split:
    """Image i holds the number i % 256 and i // 256 in its two pixels, so batches show which images they are."""
    index = torch.arange(len(labels))
    images = torch.stack([index % 256, index // 256], dim=1).to(torch.uint8).view(-1, 1, 1, 2)
    return Split(images, labels)


def _loader(split: Split, seed: int = 1, **options) -> BatchLoader:
    return BatchLoader(split, 50, RAW, shuffle=True, seed=seed, sampler="balanced", **options)


def _indices(batch: tuple[torch.Tensor, torch.Tensor]) -> list[int]:
    pixels = batch[0][:, 0, 0].round().long()
    return (pixels[:, 0] + 256 * pixels[:, 1]).tolist()


def _epoch(loader: BatchLoader) -> list[int]:
    return [i for batch in loader for i in _indices(batch)]


def test_balanced_draws_serve_each_class_a_third_of_the_time_and_each_rare_image_alike():
    loader = _loader(_split())
    drawn = torch.tensor([i for _ in range(40) for i in _epoch(loader)])
    assert len(drawn) == 40 * 1010  # each epoch keeps the split's length
    shares = torch.bincount(LABELS[drawn], minlength=3) / len(drawn)
    assert shares.tolist() == pytest.approx([1 / 3] * 3, abs=0.015)  # ~7 standard deviations
    rare = torch.bincount(drawn[drawn >= 1000] - 1000, minlength=10) / (drawn >= 1000).sum()
    assert rare.tolist() == pytest.approx([0.1] * 10, abs=0.02)  # with replacement, each of the 10 uniformly
    assert len(set(drawn.tolist())) > 900  # the common class is still seen nearly whole


def test_the_random_sampler_is_the_permutation_it_always_was():
    loader = BatchLoader(_split(), 50, RAW, shuffle=True, seed=1)
    assert sorted(_epoch(loader)) == list(range(1010))
    expected = torch.randperm(1010, generator=torch.Generator().manual_seed(1)).tolist()
    assert _epoch(BatchLoader(_split(), 50, RAW, shuffle=True, seed=1)) == expected


def test_balanced_order_is_seeded_and_new_each_epoch():
    first, again, other = _loader(_split(), 3), _loader(_split(), 3), _loader(_split(), 4)
    epoch1 = _epoch(first)
    assert epoch1 == _epoch(again) and epoch1 != _epoch(other)
    assert _epoch(first) != epoch1


@pytest.mark.parametrize("streamed", [False, True])
def test_a_mid_epoch_resume_serves_the_rest_of_the_same_balanced_draw(tmp_path, streamed):
    from PIL import Image

    labels = torch.tensor([0] * 30 + [1] * 6 + [2] * 4)
    split = _split(labels)
    if streamed:  # decoded from files through a DataLoader, as for sets larger than memory
        files = [tmp_path / f"{i}.png" for i in range(len(labels))]
        for path, image in zip(files, split.images):
            Image.fromarray(image[0].numpy()).save(path)
        split = Split(None, labels, files, (1, 1, 2))

    def loader() -> BatchLoader:
        return BatchLoader(split, 8, RAW, shuffle=True, seed=2, num_workers=0, sampler="balanced")

    full = loader()
    _epoch(full)
    epoch2 = [_indices(b) for b in full]
    interrupted = loader()
    _epoch(interrupted)
    batches = iter(interrupted)
    served = [_indices(next(batches)) for _ in range(2)]
    fresh = loader()
    fresh.load_state_dict(interrupted.state_dict())
    assert served + [_indices(b) for b in fresh] == epoch2
    assert len(set(sum(epoch2, []))) < len(labels)  # drawn with replacement, not a permutation


def test_ddp_ranks_take_interleaved_shares_of_one_balanced_draw():
    whole = _epoch(BatchLoader(_split(), 100, RAW, shuffle=True, seed=5, sampler="balanced"))
    ranks = [_epoch(_loader(_split(), 5, rank=rank, world_size=2)) for rank in (0, 1)]
    assert ranks[0] == whole[0::2][: len(ranks[0])] and ranks[1] == whole[1::2][: len(ranks[1])]


def test_a_balanced_run_killed_mid_epoch_resumes_to_identical_weights(blobs_npz, tmp_path, single_thread):
    def config(out: str, **changes):
        return small_config(blobs_npz, tmp_path / out, sampler="balanced", checkpoint_every=3, report=False, **changes)

    Trainer(config("reference")).fit()
    with pytest.raises(KeyboardInterrupt):
        Trainer(config("killed"), callbacks=[interrupt_at_step(7)]).fit()
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["loader_state"]["position"] == 2  # mid-epoch 2
    Trainer(config("killed", resume=str(tmp_path / "killed"))).fit()
    ours, theirs = (load_checkpoint(tmp_path / run / "last.pt")["model_state"] for run in ("killed", "reference"))
    assert all(torch.equal(ours[key], theirs[key]) for key in theirs)
    random = Trainer(small_config(blobs_npz, tmp_path / "random", report=False))
    random.fit()
    assert not all(torch.equal(random.model.state_dict()[k], theirs[k]) for k in theirs)  # the sampler mattered


def test_an_unknown_sampler_is_a_one_line_error(blobs_npz, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^sampler must be one of balanced, random; got 'weighted'$"):
        small_config(blobs_npz, tmp_path / "run", sampler="weighted").validate()
    args = ["train", "--data", f"npz:{blobs_npz}", "--out", str(tmp_path / "run"), "--sampler", "Balanced"]
    assert main(args) == 2
    assert (
        capsys.readouterr().err.strip() == "convcoach: error: sampler must be one of balanced, random; got 'Balanced'"
    )


def test_tune_keeps_sampler_for_its_search_and_reads_the_loaders_from_yaml(blobs_npz, tmp_path):
    from convcoach.cli import build_parser
    from convcoach.tune.options import tune_inputs

    config = tmp_path / "tune.yaml"
    config.write_text(f"data: npz:{blobs_npz}\nsampler: balanced\ntune:\n  trials: 2\n")
    args = build_parser().parse_args(["tune", "--config", str(config), "--sampler", "tpe", "--space", "lr=0.01..0.1"])
    base, _, options = tune_inputs(args)
    assert (base.validate().sampler, options.sampler) == ("balanced", "tpe")

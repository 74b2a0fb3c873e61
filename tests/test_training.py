"""Training: supernet (sandwich + distillation), resume after kill -9, evaluate, stand-alone."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import acting_after_each_rename
from edgenas import get_space
from edgenas.cli import main
from edgenas.errors import CheckpointError
from edgenas.data.augment import prepare_batch
from edgenas.train.checkpoint import CHECKPOINT_FILE, load_checkpoint, read_run
from edgenas.train.evaluate import recalibrate_bn
from edgenas.train.loop import TrainConfig, iterate_eval
from edgenas.train.rundata import reopen_data
from edgenas.train.subnet_sampling import largest_arch, smallest_arch
from edgenas.train.supernet_training import supernet_evaluator, train_supernet

ROOT = Path(__file__).resolve().parents[1]
SMALL = TrainConfig(epochs=1, batch_size=32, limit=160, val_fraction=0.2)


@pytest.fixture(scope="module")
def supernet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet")
    result = train_supernet(get_space("cifar"), "digits", out, SMALL)
    return out, result


def test_supernet_training_writes_a_loadable_checkpoint(supernet_run) -> None:
    out, result = supernet_run
    assert len(result["history"]) == 1 and result["history"][0]["images_per_s"] > 0
    # the recorded accuracies are those of the two ends of the space, scored as any arch is
    evaluator = supernet_evaluator(out)
    space = get_space("cifar")
    assert result["val_accuracy_smallest"] == evaluator.evaluate(smallest_arch(space))
    assert result["val_accuracy_largest"] == evaluator.evaluate(largest_arch(space))
    state = load_checkpoint(out / CHECKPOINT_FILE)  # weights_only=True inside
    assert state["epoch"] == 1
    assert read_run(out)["kind"] == "supernet"


def test_evaluate_is_deterministic_and_scores_validation_images(supernet_run) -> None:
    out, _ = supernet_run
    evaluator = supernet_evaluator(out, val_limit=64)
    arch = get_space("cifar").sample(2)
    first = evaluator.evaluate(arch)
    assert first == evaluator.evaluate(arch)
    # counted here: the subnet, its batch norm re-estimated on the evaluator's fixed train
    # images, right on how many of the run's (first 64) validation images
    split = reopen_data(read_run(out)["data"]).split
    assert torch.equal(evaluator.val, split.val[:64])
    assert set(evaluator.calibration.tolist()) <= set(split.train.tolist())
    model = evaluator.supernet.subnet(arch)
    recalibrate_bn(model, [prepare_batch(images, evaluator.normalize, False, arch.resolution)
                           for images, _ in iterate_eval(evaluator.data, evaluator.calibration,
                                                         evaluator.batch_size)])
    images, labels = evaluator.data.images[split.val[:64]], evaluator.data.labels[split.val[:64]]
    with torch.no_grad():
        logits = model(prepare_batch(images, evaluator.normalize, False, arch.resolution))
    assert first == int((logits.argmax(1) == labels).sum()) / len(labels)


def test_the_subnet_scored_has_its_batch_norm_estimated_on_the_fixed_train_images(
        supernet_run, monkeypatch) -> None:
    """A subnet inherits batch-norm statistics gathered over every path of the supernet,
    which fit no single subnet (Once-for-All re-estimates them): the model the evaluator
    scores must carry the statistics of its own fixed training batches, not the inherited
    ones."""
    import copy

    out, _ = supernet_run
    evaluator = supernet_evaluator(out, val_limit=64)
    arch = get_space("cifar").sample(3)
    reference = copy.deepcopy(evaluator.supernet).subnet(arch)
    inherited = [m.running_mean.clone() for m in reference.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    recalibrate_bn(reference, [prepare_batch(images, evaluator.normalize, False, arch.resolution)
                               for images, _ in iterate_eval(evaluator.data, evaluator.calibration,
                                                             evaluator.batch_size)])
    scored = []
    subnet = type(evaluator.supernet).subnet
    monkeypatch.setattr(type(evaluator.supernet), "subnet",
                        lambda self, a: scored.append(subnet(self, a)) or scored[-1])
    evaluator.evaluate(arch)
    norms = [(m, r) for m, r in zip(scored[0].modules(), reference.modules())
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert norms and len(norms) == len(inherited)
    assert not all(torch.allclose(r.running_mean, old) for (_, r), old in zip(norms, inherited))
    for model_norm, reference_norm in norms:
        assert torch.allclose(model_norm.running_mean, reference_norm.running_mean, atol=1e-5)
        assert torch.allclose(model_norm.running_var, reference_norm.running_var, atol=1e-5)
        assert model_norm.momentum == reference_norm.momentum  # restored after the average
    assert not scored[0].training


def test_a_different_run_in_the_same_directory_is_refused(supernet_run) -> None:
    out, _ = supernet_run
    with pytest.raises(CheckpointError, match="holds a different run"):
        train_supernet(get_space("cifar"), "digits", out, TrainConfig(epochs=2, limit=160))


def test_kill_9_mid_training_then_rerun_continues_from_the_checkpoint(tmp_path) -> None:
    out = tmp_path / "run"
    training = f"""
from edgenas import get_space
from edgenas.train.loop import TrainConfig, iterate_eval
from edgenas.train.rundata import reopen_data
from edgenas.train.subnet_sampling import largest_arch, smallest_arch
from edgenas.train.supernet_training import train_supernet
train_supernet(get_space('cifar'), 'digits', {str(out)!r},
               TrainConfig(epochs=3, batch_size=32, limit=120, val_fraction=0.2))
"""
    # killed the moment the first epoch's checkpoint is in place, two epochs before the end
    killed_after_epoch_1 = f"""
if path == Path({str(out / CHECKPOINT_FILE)!r}):
    os.kill(os.getpid(), signal.SIGKILL)
"""
    process = subprocess.run(acting_after_each_rename(training, killed_after_epoch_1),
                             stderr=subprocess.DEVNULL, timeout=600)
    assert process.returncode == -signal.SIGKILL
    assert load_checkpoint(out / CHECKPOINT_FILE)["epoch"] == 1
    result = train_supernet(get_space("cifar"), "digits", out,
                            TrainConfig(epochs=3, batch_size=32, limit=120, val_fraction=0.2))
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]
    assert load_checkpoint(out / CHECKPOINT_FILE)["epoch"] == 3


def test_train_command_reports_validation_accuracy(tmp_path, capsys) -> None:
    code = main(["train", "resnet20", "--data", "digits", "--epochs", "1", "--limit", "160",
                 "--batch-size", "32", "--out", str(tmp_path / "r20")])
    assert code == 0
    assert re.search(r"validation accuracy \d+\.\d+ %", capsys.readouterr().out)


def test_train_from_the_supernet_reuses_its_split(supernet_run, tmp_path) -> None:
    out, _ = supernet_run
    arch = get_space("cifar").sample(5)
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(arch.to_json())
    assert main(["train", str(arch_file), "--epochs", "1", "--limit", "160", "--batch-size", "32",
                 "--init-from", str(out), "--out", str(tmp_path / "ft")]) == 0
    assert read_run(tmp_path / "ft")["data"]["split"] == read_run(out)["data"]["split"]


def test_no_checkpoint_is_ever_loaded_without_weights_only() -> None:
    loads = []
    for path in (ROOT / "edgenas").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "torch.load(" in line and "weights_only=True" not in line:
                loads.append(f"{path}: {line.strip()}")
    assert not loads


def test_a_run_resumes_whatever_the_spelling_of_its_data_path(tmp_path, monkeypatch) -> None:
    """A run recorded as a relative path resumes when named absolutely, or from elsewhere
    with the path that reaches the same images (the identity holds absolute paths)."""
    from edgenas.data import canonical_spec
    from edgenas.train.checkpoint import start_or_resume

    images = tmp_path / "images"
    images.mkdir()
    monkeypatch.chdir(tmp_path)
    assert canonical_spec("cifar10:images") == f"cifar10:{images}"
    assert canonical_spec("images") == str(images) and canonical_spec("digits") == "digits"
    assert canonical_spec("digits (scikit-learn)") == "digits (scikit-learn)"
    run = tmp_path / "run"
    start_or_resume(run, {"data": {"spec": "cifar10:images", "source": "cifar10:images"}})
    # an older run.json with the relative spelling, resumed with the absolute one
    assert start_or_resume(run, {"data": {"spec": f"cifar10:{images}",
                                          "source": f"cifar10:{images}"}}) is None

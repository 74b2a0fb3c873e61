"""The training commands: `supernet train` and `train`, through their own argparse parser."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from edgenas.commands.training import register
from edgenas.errors import DataError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="edgenas")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def test_supernet_train_command_writes_a_resumable_run(tmp_path: Path, capsys) -> None:
    argv = ("supernet", "train", "--space", "cifar", "--data", "digits", "--epochs", "1",
            "--out", str(tmp_path), "--batch-size", "8", "--limit", "40", "--val-limit", "8",
            "--num-random", "1", "--calib-batches", "1")
    args = parse(*argv)
    args.func(args)
    assert "validation accuracy (largest subnet)" in capsys.readouterr().out
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "result.json").exists()


def test_data_spec_that_names_nothing_is_a_data_error(tmp_path: Path) -> None:
    args = parse("train", "resnet20", "--data", str(tmp_path / "missing"), "--epochs", "1",
                 "--out", str(tmp_path / "run"))
    with pytest.raises(DataError, match="does not exist; expected 'digits', 'cifar10:PATH'"):
        args.func(args)

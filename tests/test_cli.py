"""The edgenas command line: thin, scriptable, and clear about bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgenas import Arch, count, get_preset, get_space
from edgenas.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_arch_show_prints_a_preset_as_loadable_json(capsys) -> None:
    code, out, _ = run(capsys, "arch", "show", "resnet56")
    assert code == 0 and Arch.from_json(out) == get_preset("resnet56")


def test_arch_sample_is_seeded_and_in_the_space(capsys) -> None:
    _, first, _ = run(capsys, "arch", "sample", "--space", "cifar", "--seed", "3")
    _, second, _ = run(capsys, "arch", "sample", "--space", "cifar", "--seed", "3")
    assert first == second
    assert Arch.from_json(first) == get_space("cifar").sample(3)


def test_arch_count_json_has_the_documented_keys(capsys, tmp_path) -> None:
    path = tmp_path / "arch.json"
    path.write_text(get_space("cifar").sample(9).to_json(indent=2))
    code, out, _ = run(capsys, "arch", "count", str(path), "--json")
    data = json.loads(out)
    assert code == 0
    assert {"macs", "params", "memory_bytes"} <= set(data)
    assert data["macs"] == count(get_space("cifar").sample(9)).macs


def test_arch_count_table_shows_exact_numbers(capsys) -> None:
    code, out, _ = run(capsys, "arch", "count", "mobilenetv2")
    assert code == 0
    assert "300,774,272" in out and "3,504,872" in out and "peak memory int8" in out


def test_bad_arch_file_is_one_line_naming_file_and_field(capsys, tmp_path) -> None:
    data = get_preset("resnet20").to_dict()
    data["stages"][2]["blocks"][1]["op"] = "transformer"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    code, out, err = run(capsys, "arch", "count", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"edgenas: error: {path}: stages[2].blocks[1].op: 'transformer' not in")
    assert "Traceback" not in err


def test_unknown_arch_name_lists_presets(capsys) -> None:
    code, _, err = run(capsys, "arch", "count", "vgg16")
    assert code == 2 and "resnet20" in err


def test_space_list_and_show(capsys) -> None:
    code, out, _ = run(capsys, "space", "list")
    assert code == 0 and "cifar" in out and "imagenet" in out
    code, out, _ = run(capsys, "space", "show", "cifar", "--json")
    assert json.loads(out)["size"] == get_space("cifar").size()


def test_console_script_is_installed() -> None:
    exe = shutil.which("edgenas", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("no edgenas console script beside this Python (package not pip-installed)")
    out = subprocess.run([exe, "arch", "count", "resnet20", "--json"], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout)["params"] == count(get_preset("resnet20")).params

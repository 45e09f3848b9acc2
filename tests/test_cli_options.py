"""Every command: a bad option value is a usage error (exit 2) that lists the valid choices,
before anything is loaded; every option says what it does in --help."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from docunet_rt.cli.main import app

runner = CliRunner()


def flat(output: str) -> str:
    """The output with Rich's panel borders and line wrapping removed."""
    for ch in "│╭╮╰╯─":
        output = output.replace(ch, " ")
    return " ".join(output.split())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["export", "ck", "-o", "m", "--precision", "fp64"], "valid choices: fp32, fp16, int8"),
        (["export", "ck", "-o", "m", "--precision", ","], "valid choices: fp32, fp16, int8"),
        (["export", "ck", "-o", "m", "--opset", "9"], "valid opsets: 14-20"),
        (
            ["export", "ck", "-o", "m", "--exporter", "dynamo", "--opset", "17"],
            "valid opsets: 18-20",
        ),
        (["export", "ck", "-o", "m", "--int8-weights", "int4"], "valid choices: qint8, quint8"),
        (["export", "ck", "-o", "m", "--exporter", "jit"], "valid choices: torchscript, dynamo"),
        (["parity", "ck", "m", "--synthetic", "--precision", "fp64"], "valid choices: fp32, fp16"),
        (["parity", "ck", "m", "--synthetic", "--format", "xml"], "valid choices: auto, docred"),
        (
            ["train", "--train", "a", "--dev", "b", "-o", "o", "--format", "xml"],
            "valid choices: auto,",
        ),
        (
            ["train", "--train", "a", "--dev", "b", "-o", "o", "--device", "tpu"],
            "valid choices: auto, cpu, cuda",
        ),
        (
            ["train", "--train", "a", "--dev", "b", "-o", "o", "--lr-encoder", "-1"],
            "greater than or equal to 0",
        ),
        (
            ["train", "--train", "a", "--dev", "b", "-o", "o", "--epochs", "0"],
            "greater than or equal to 1",
        ),
        (
            ["evaluate", "m", "--data", "d", "--precision", "fp64"],
            "valid choices: fp32, fp16, int8",
        ),
        (["evaluate", "m", "--data", "d", "--format", "xml"], "valid choices: auto, docred"),
        (["predict", "m", "--data", "d", "-o", "r", "--precision", "fp64"], "valid choices: fp32"),
        (["predict", "m", "--data", "d", "-o", "r", "--format", "xml"], "valid choices: auto"),
        (["synth", "-o", "s", "--docs", "2"], "--docs must be at least 3"),
        (["synth", "-o", "s", "--text-fraction", "1.5"], "--text-fraction must be between 0 and 1"),
        (["convert", "x", "-o", "y", "--from", "xml"], "valid: auto, docred, jsonl, cdr, pubtator"),
        (["convert", "x", "-o", "y", "--to", "csv"], "valid: jsonl, docred"),
    ],
)
def test_bad_option_values_are_usage_errors(tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)  # nothing may be written, and relative paths stay here
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert expected in flat(r.output)
    assert not any(tmp_path.iterdir())


def test_errors_print_as_text_not_markup(capsys):
    import typer

    from docunet_rt.cli import common

    with pytest.raises(typer.Exit):
        common.fail("training needs torch: pip install 'docunet-rt[train]' [bold]")
    assert "pip install 'docunet-rt[train]' [bold]" in flat(capsys.readouterr().err)


@pytest.mark.parametrize(
    "name", ["predict", "evaluate", "train", "export", "parity", "convert", "synth"]
)
def test_every_option_has_help(name):
    command = typer.main.get_command(app).commands[name]
    missing = [p.name for p in command.params if not getattr(p, "help", None)]
    assert not missing, f"{name}: options without help: {missing}"


@pytest.mark.parametrize(
    "name",
    ["train", "evaluate", "predict", "export", "parity", "bench", "synth", "convert", "extract"],
)
def test_flags_show_no_value_placeholder(name):
    r = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "160"})
    assert r.exit_code == 0
    flags = [x for x in r.output.splitlines() if "<bool>" in x and "--help" not in x]
    assert flags == []

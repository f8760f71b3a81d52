"""`convcoach completion bash|zsh|fish`: scripts written from the parser, run in the shells that are installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from convcoach.cli import build_parser, main
from convcoach.completion import completion_script

# (words on the line, the last one being completed) -> what bash offers
CASES = [
    (["convcoach", "tr"], ["train"]),
    (["convcoach", "--verbose", "ev"], ["eval"]),
    (["convcoach", "train", "--clip"], ["--clip-grad"]),
    (["convcoach", "train", "--accum"], ["--accumulate"]),
    (["convcoach", "train", "--dry"], ["--dry-run"]),
    (["convcoach", "eval", "--split", "v"], ["val"]),
    (["convcoach", "eval", "--split", "train", "--to"], ["--top-k"]),
    (["convcoach", "completion", ""], ["bash", "zsh", "fish"]),
    (["convcoach", "train", "--data", ""], []),  # a value without choices: the shell completes file names
]


def _bash_completes(script: str, words: list[str]) -> list[str]:
    line = " ".join(f"'{word}'" for word in words)
    probe = f'COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _convcoach; printf "%s\\n" "${{COMPREPLY[@]}}"'
    result = subprocess.run(["bash", "-c", f"{script}\n{probe}"], capture_output=True, text=True, check=True)
    return result.stdout.split()


@pytest.fixture(scope="module")
def scripts() -> dict[str, str]:
    parser = build_parser()
    return {shell: completion_script(parser, shell) for shell in ("bash", "zsh", "fish")}


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize(("words", "offered"), CASES)
def test_bash_completes_commands_flags_and_choices(scripts, words, offered):
    assert _bash_completes(scripts["bash"], words) == offered


def test_the_command_prints_the_script_and_names_a_wrong_shell(capsys):
    assert main(["completion", "bash"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# bash completion for convcoach") and "complete -o default -F _convcoach convcoach" in out
    with pytest.raises(SystemExit) as stop:
        main(["completion", "tcsh"])
    assert stop.value.code == 2
    # one line (Python 3.12 quotes the choices, 3.11 does not)
    assert re.fullmatch(
        r"convcoach completion: error: argument shell: invalid choice: 'tcsh' \(choose from '?bash'?, '?zsh'?, "
        r"'?fish'?\) \(usage: convcoach completion --help\)\n",
        capsys.readouterr().err,
    )


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_registers_the_function_through_bashcompinit(scripts):
    probe = "autoload -U compinit && compinit -u -D\n" + scripts["zsh"] + '\nprint -r -- "$_comps[convcoach]"'
    result = subprocess.run(["zsh", "-f", "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "_bash_complete -o default -F _convcoach"


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completes_commands_flags_and_choices(scripts):
    lines = ["function convcoach; end"] + [f"complete -C '{' '.join(words)}'" for words, _ in CASES[:-1]]
    result = subprocess.run(
        ["fish", "--no-config", "-c", scripts["fish"] + "\n" + "\n".join(lines)], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    offered = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert offered == [word for _, words in CASES[:-1] for word in sorted(words)]
    assert "--clip-grad\tbefore every optimizer step, scale the gradients down" in result.stdout

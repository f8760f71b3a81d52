"""Shell completion scripts (`convcoach completion bash|zsh|fish`), written from the argparse parser itself:
every command, its flags and the values of flags with choices, so a script never drifts from the CLI.
Static text, not argcomplete: a TAB then costs no Python start-up (the parser's imports take a second)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass

SHELLS = ("bash", "zsh", "fish")
WORD = re.compile(r"^[A-Za-z0-9_.:+-]+$")  # what a completion list may hold unquoted
DESCRIPTION = 80  # characters of a flag's help that fish shows
EMPTY = '""'  # the top level's command, in fish


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]  # --name (and -n)
    takes_value: bool
    choices: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class Command:
    name: str  # "" for the top level
    help: str
    flags: tuple[Flag, ...]
    words: tuple[str, ...]  # what a positional argument completes to: subcommands, or a positional's choices


def _choices(action: argparse.Action) -> tuple[str, ...]:
    return tuple(str(c) for c in action.choices or () if WORD.match(str(c)))


def _help(action: argparse.Action) -> str:
    text = (action.help or "").replace("%%", "%")
    return "" if text == argparse.SUPPRESS else text


def _command(name: str, help_text: str, parser: argparse.ArgumentParser) -> Command:
    flags, words = [], ()
    for action in parser._actions:  # argparse keeps no public list of them
        if action.option_strings:
            takes = action.nargs != 0
            flags.append(Flag(tuple(action.option_strings), takes, _choices(action) if takes else (), _help(action)))
        elif not isinstance(action, argparse._SubParsersAction):
            words = words or _choices(action)
    return Command(name, help_text, tuple(flags), words)


def commands(parser: argparse.ArgumentParser) -> list[Command]:
    """The top level (its words: the subcommands), then each subcommand."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    top = _command("", parser.description or "", parser)
    top = Command("", top.help, top.flags, tuple(sub.choices))
    return [top, *(_command(name, helps.get(name, ""), p) for name, p in sub.choices.items())]


def _long(flag: Flag) -> list[str]:
    return [name for name in flag.names if name.startswith("--")]


def bash_script(program: str, found: list[Command], zsh: bool = False) -> str:
    """A bash function: the command is the first word that is not a flag; after a flag that takes a value,
    its choices or the shell's file names (-o default); else the flags, or the command's words. Under zsh's
    bashcompinit, with bash's 0-based arrays."""
    per_command, per_flag = [], []
    for command in found:
        flags = " ".join(name for flag in command.flags for name in _long(flag))
        takes = " ".join(name for flag in command.flags if flag.takes_value for name in _long(flag))
        words = " ".join(command.words)
        per_command.append(f'        "{command.name}") flags="{flags}"; takes="{takes}"; words="{words}" ;;')
        for flag in command.flags:
            if flag.choices:
                names = "|".join(f'"{command.name} {name}"' for name in _long(flag))
                per_flag.append(f'            {names}) words="{" ".join(flag.choices)}" ;;')
    function = f"_{program}"
    return "\n".join(
        [
            f"{function}() {{",
            *(["    setopt localoptions ksharrays  # COMP_WORDS counts from 0, as in bash"] if zsh else []),
            '    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} command="" i',
            "    local flags takes words",
            "    for ((i = 1; i < COMP_CWORD; i++)); do",
            "        if [[ ${COMP_WORDS[i]} != -* ]]; then command=${COMP_WORDS[i]}; break; fi",
            "    done",
            '    case "$command" in',
            *per_command,
            "        *) return ;;",
            "    esac",
            '    if [[ " $takes " == *" $prev "* ]]; then',
            '        case "$command $prev" in',
            *per_flag,
            "            *) return ;;  # a value without choices: the shell's file names (-o default)",
            "        esac",
            '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "    elif [[ $cur == -* ]]; then",
            '        COMPREPLY=($(compgen -W "$flags" -- "$cur"))',
            "    elif [[ -n $words ]]; then",
            '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "    fi",
            "}",
            f"complete -o default -F {function} {program}",
        ]
    )


def _bash(program: str, found: list[Command]) -> str:
    return f'# bash completion for {program}: eval "$({program} completion bash)" in ~/.bashrc\n' + bash_script(
        program, found
    )


def _zsh(program: str, found: list[Command]) -> str:
    """zsh runs the bash function through its bashcompinit."""
    return (
        f"#compdef {program}\n"
        f'# zsh completion for {program}: eval "$({program} completion zsh)" in ~/.zshrc, after compinit\n'
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(program, found, zsh=True)
    )


def _quoted(text: str) -> str:
    """A fish single-quoted string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(program: str, found: list[Command]) -> str:
    """fish's own `complete` lines, with each flag's help as its description."""
    helper = f"__{program}_using"
    lines = [
        f"# fish completion for {program}: {program} completion fish > ~/.config/fish/completions/{program}.fish",
        f"function {helper} --argument-names expected --description 'is the {program} command on the line this one'",
        "    set -l found ''",
        "    for word in (commandline -opc)[2..-1]",
        "        if not string match -q -- '-*' $word",
        "            set found $word",
        "            break",
        "        end",
        "    end",
        '    test "$found" = "$expected"',
        "end",
    ]
    for command in found:
        condition = f"-n '{helper} {command.name or EMPTY}'"
        for flag in command.flags:
            names = " ".join(f"-l {name[2:]}" if name.startswith("--") else f"-s {name[1:]}" for name in flag.names)
            value = f" -x -a {_quoted(' '.join(flag.choices))}" if flag.choices else " -r" if flag.takes_value else ""
            help_text = flag.help[:DESCRIPTION]
            lines.append(f"complete -c {program} {condition} {names}{value} -d {_quoted(help_text)}")
        if not command.name:
            lines += [
                f"complete -c {program} {condition} -f -a {sub.name} -d {_quoted(sub.help[:DESCRIPTION])}"
                for sub in found[1:]
            ]
        elif command.words:
            lines.append(f"complete -c {program} {condition} -f -a {_quoted(' '.join(command.words))}")
    return "\n".join(lines)


WRITERS: dict[str, Callable[[str, list[Command]], str]] = {"bash": _bash, "zsh": _zsh, "fish": _fish}


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of `parser`'s program for `shell` (one of SHELLS)."""
    return WRITERS[shell](parser.prog, commands(parser)) + "\n"

"""The command registry and the flag helpers the packages' cli.py modules share; imports no feature package.

A package adds a subcommand in its own cli.py with `@command(name, help, add_arguments, order=N)`;
convcoach/cli.py imports every package's cli.py it finds and builds the parser in `order`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NamedTuple

from .config import TrainConfig, config_fields, field_docs, from_dict, load_yaml, unwrap_optional

Command = Callable[[argparse.Namespace], int]
AddArguments = Callable[[argparse.ArgumentParser], None]


class Registered(NamedTuple):
    add_arguments: AddArguments
    run: Command
    help_text: str
    order: int


COMMANDS: dict[str, Registered] = {}


def command(name: str, help_text: str, add_arguments: AddArguments, order: int = 1000) -> Callable[[Command], Command]:
    """Register `run` as `convcoach NAME`; `--help` lists the commands by `order`, then name."""

    def register(run: Command) -> Command:
        known = COMMANDS.get(name)
        if known is not None and (known.run.__module__, known.run.__qualname__) != (run.__module__, run.__qualname__):
            raise ValueError(f"command '{name}' is already registered by {known.run.__module__}")
        COMMANDS[name] = Registered(add_arguments, run, help_text, order)
        return run

    return register


def ordered_commands() -> list[tuple[str, Registered]]:
    return sorted(COMMANDS.items(), key=lambda item: (item[1].order, item[0]))


def add_config_flags(parser: argparse.ArgumentParser, cls: type = TrainConfig, skip: tuple[str, ...] = ()) -> None:
    """One flag per config field; given flags override the YAML file (defaults are not applied here)."""
    parser.add_argument("--config", help="YAML file of options; flags override it")
    defaults, docs = cls(), field_docs(cls)
    for name, annotation in config_fields(cls).items():
        if name in skip:
            continue
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        shown = "none" if default is None else ",".join(map(str, default)) if isinstance(default, list) else default
        doc = docs.get(name, "")
        text = doc if default is None and "none" in doc.lower() else f"{doc} (default: {shown})".lstrip()
        text = text.replace("%", "%%")
        if unwrap_optional(annotation) is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
        else:
            parser.add_argument(flag, default=argparse.SUPPRESS, metavar=name.upper(), help=text)


def config_from_args(args: argparse.Namespace, cls: type = TrainConfig) -> Any:
    values = load_yaml(args.config) if getattr(args, "config", None) else {}
    fields = config_fields(cls)
    values.update({k: v for k, v in vars(args).items() if k in fields})
    return from_dict(values, cls, source=args.config or "command line")

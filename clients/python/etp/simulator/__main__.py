"""`python -m etp.simulator …` (and bin/simulate_sensors): the same as `etp simulate …`, with the
`etp` command's own options (`--url`, `--api-key`, `--quiet`) taken anywhere on the line."""

import sys

from etp.cli.app import main

_WITH_VALUE = ("--url", "--api-key")
_FLAGS = ("--quiet", "-q")


def split(args: list[str]) -> tuple[list[str], list[str]]:
    """The `etp` options (which go before the command) and the rest."""
    own: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _WITH_VALUE and index + 1 < len(args):
            own += args[index : index + 2]
            index += 2
            continue
        if arg in _FLAGS or arg.startswith(tuple(f"{option}=" for option in _WITH_VALUE)):
            own.append(arg)
        else:
            rest.append(arg)
        index += 1
    return own, rest


if __name__ == "__main__":
    own, rest = split(sys.argv[1:])
    main([*own, "simulate", *rest])

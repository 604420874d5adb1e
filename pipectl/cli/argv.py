"""Global options anywhere on the line, as the AWS CLI and kubectl take them.

Click reads a group's options only before the command name, so `pipectl status -o json`
would be "No such option". hoist() moves the global options found after the command to
the front. It walks the line as click will parse it: a value that belongs to one of the
command's own options (`--filter -o`) is skipped, never taken for a global option, and
nothing after `--` is touched.
"""

from __future__ import annotations

from typing import Any

# Global options (app.main_options) and whether each takes a value.
GLOBAL_OPTIONS = {
    "--config": True, "-c": True, "--target": True, "-t": True, "--endpoint-url": True,
    "--profile": True, "--region": True, "--output": True, "-o": True, "--debug": False,
}


def hoist(argv: list[str], group: Any) -> list[str]:
    """argv with every global option (and its value) moved before the command."""
    front: list[str] = []
    rest: list[str] = []
    command = group
    takes_value = _value_options(group)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        size = _global_size(arg)
        if size:
            front += argv[i:i + size]
            i += size
            continue
        if arg in takes_value:  # a command option and its value, whatever the value says
            rest += argv[i:i + 2]
            i += 2
            continue
        sub = getattr(command, "commands", {}).get(arg) if not arg.startswith("-") else None
        if sub is not None:  # a command name (or a group's subcommand): its options next
            command, takes_value = sub, _value_options(sub)
        rest.append(arg)
        i += 1
    return front + rest


def _global_size(arg: str) -> int:
    """How many tokens a global option at arg spans: 0 when arg is not one."""
    if arg in GLOBAL_OPTIONS:
        return 2 if GLOBAL_OPTIONS[arg] else 1
    name = arg.partition("=")[0]
    if arg.startswith("--") and "=" in arg and GLOBAL_OPTIONS.get(name):
        return 1  # --output=json
    if not arg.startswith("--") and len(arg) > 2 and GLOBAL_OPTIONS.get(arg[:2]):
        return 1  # -ojson
    return 0


def _value_options(command: Any) -> set[str]:
    return {opt for p in getattr(command, "params", ())
            if p.param_type_name == "option" and not p.is_flag and not p.count
            for opt in (*p.opts, *p.secondary_opts)}

"""relay: operate a clay-relay stack.

    relay [--stack NAME] [--region REGION] [--profile P]   a deployed stack (defaults: samconfig.toml)
    relay --local                                          the local stack (`make run`)

Each command lives in its own module and registers itself here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from clay_relay.config import ConfigError
from clay_relay.observability import mask_email
from relay_cli import CommandError, backfill, clay_pool, console, dead_letters, leads, send, status
from relay_cli.stack import LOCAL_STATE_FILE, Stack, StackError, deployed_stack, local_stack, samconfig_defaults

COMMANDS = (status, clay_pool, dead_letters, send, backfill, leads, console)


def _stack_options(p: argparse._ActionsContainer, *, after_command: bool = False) -> None:
    """Which stack, and how to print: before the command (`relay --local status`) or after it, at any
    level (`relay status --local`, `relay dlq list --json`). After the command an option left out
    keeps what was given before it (SUPPRESS: no default overwrites it)."""
    hide = {"default": argparse.SUPPRESS, "help": argparse.SUPPRESS} if after_command else {}

    def option(*names: str, **kwargs) -> None:
        if not any(name in p._option_string_actions for name in names):
            p.add_argument(*names, **{**kwargs, **hide})

    option("--local", action="store_true", help="the local stack started with `make run`")
    option("--state-file", type=Path, default=LOCAL_STATE_FILE, help="the local stack's state file")
    option("--stack", help="deployed stack name")
    option("--region", help="its AWS region")
    option("--profile", help="AWS profile to use")
    option("--config-env", default="default", help="samconfig.toml environment for the defaults")
    option("--config", type=Path, help="relay.json the stack runs with (default: the project's)")
    option("--json", action="store_true", help="print JSON instead of tables (for scripts)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="relay",
        description="Operate a clay-relay stack, deployed or local. The options that say which stack (and "
        "--json) may also come after the command: `relay status --local`.",
    )
    _stack_options(p.add_argument_group("which stack (default: samconfig.toml's stack_name and region), and --json"))
    commands = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    _options_anywhere(commands)
    return p


def _options_anywhere(commands: argparse._SubParsersAction) -> None:
    """The stack options and `--json` also after the command, at every level."""
    for command in set(commands.choices.values()):
        _stack_options(command, after_command=True)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                _options_anywhere(action)


def resolve_stack(args: argparse.Namespace) -> Stack:
    if args.local:
        return local_stack(args.state_file, config_path=args.config)
    defaults = samconfig_defaults(args.config_env)
    name = args.stack or defaults.get("stack_name")
    region = args.region or defaults.get("region")
    if not (name and region):
        raise StackError("which stack? give --stack and --region (or --local for the local stack)")
    return deployed_stack(name, region, profile=args.profile, config_path=args.config)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(resolve_stack(args), args) or 0
    except (StackError, CommandError, ConfigError) as error:
        print(f"relay: error: {mask_email(str(error))}", file=sys.stderr)
        return 1
    except (BotoCoreError, ClientError) as error:  # credentials, permissions, throttling: AWS says what
        print(f"relay: error: AWS: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("relay: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

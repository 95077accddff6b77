"""The `stylegan` command: the only place that parses arguments.

Each workflow rule calls one sub-command; each sub-command is a thin call into
the library. Stage settings arrive as one JSON object (`--settings`), the rule's
section of `config.yaml`, so the library sees exactly what the schema validated.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from stylegan.errors import StageError
from stylegan.settings import SettingsError

log = logging.getLogger("stylegan")

Handler = Callable[[argparse.Namespace], int | None]


def _command(sub: argparse._SubParsersAction, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """Add one sub-command whose handler receives the parsed namespace."""
    parser = sub.add_parser(name, help=help, description=help)
    parser.set_defaults(handler=handler)
    return parser


def _settings_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--settings",
        default="{}",
        help="the stage's config section as JSON, or @file.json / @file.yaml",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stylegan", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    for add in (_add_demo, _add_crawl, _add_align, _add_filter, _add_dataset, _add_train):
        add(groups)
    return parser


# --- demo ------------------------------------------------------------------


def _add_demo(groups: argparse._SubParsersAction) -> None:
    """Stage owners register their sub-commands in functions like this one."""


# --- crawl -----------------------------------------------------------------


def _add_crawl(groups: argparse._SubParsersAction) -> None:
    pass


# --- align -----------------------------------------------------------------


def _add_align(groups: argparse._SubParsersAction) -> None:
    pass


# --- filter ----------------------------------------------------------------


def _add_filter(groups: argparse._SubParsersAction) -> None:
    pass


# --- dataset (pack, verify, card) ------------------------------------------


def _add_dataset(groups: argparse._SubParsersAction) -> None:
    pass


# --- train (train, generate, export, summary) --------------------------------


def _add_train(groups: argparse._SubParsersAction) -> None:
    pass


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.handler(args) or 0
    except (StageError, SettingsError) as err:
        log.error("%s", err)
        return 2


if __name__ == "__main__":
    sys.exit(main())

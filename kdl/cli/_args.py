"""The kdl command's parser class, its argument types and its renamed flags.

Split from :mod:`kdl.cli._parser` (issue 27: no module over 600 lines),
which defines the commands themselves.
"""

from __future__ import annotations

import argparse
import sys

from kdl._constants import TASKS


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 2;
    an unknown flag is named by the sub-command it was given to, with the
    closest flag it has."""

    commands: dict = {}  # "train", "privacy epsilon"... -> its Parser

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        parsed, extra = self.parse_known_args(args, namespace)
        name = getattr(parsed, "command", None) or ""
        if name == "privacy":
            name += f" {parsed.privacy_command}"
        where = self.commands.get(name, self)
        if extra:
            where.error(
                f"unrecognized arguments: {' '.join(extra)}{_hint(where, extra)}"
            )
        _note_renamed_flags(where, parsed, args)
        for flag in getattr(where, "required_flags", ()):  # new or old name
            if getattr(parsed, flag[2:].replace("-", "_")) is None:
                where.error(f"the following arguments are required: {flag}")
        return parsed


class _OldFlag(argparse.Action):
    """A flag renamed after its Python argument (issue 31): it still sets the
    new flag's value, and parse_args notes the new name on stderr."""

    def __init__(self, option_strings, dest, *, new, **kwargs):
        self.new = new  # the new flag's option strings, the documented first
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)
        used = getattr(namespace, RENAMED, None) or []
        setattr(namespace, RENAMED, [*used, (option_string, self.new)])


RENAMED = "renamed_flags"  # where _OldFlag lists the old flags it saw


def old_flag(p, old: str, new: tuple, *, dest: str, value=None, **kwargs) -> None:
    """Adds the deprecated flag ``old`` (hidden from --help) setting ``dest``;
    ``value``: what a flag without an argument stores."""
    p.add_argument(
        old,
        dest=dest,
        action=_OldFlag,
        new=new,
        nargs=0 if value is not None else None,
        const=value,
        default=argparse.SUPPRESS,  # the new flag's default stands
        help=argparse.SUPPRESS,
        **kwargs,
    )


def _note_renamed_flags(where, parsed, args) -> None:
    """One line on stderr per old flag used (not stdout: a script reads it);
    an old flag together with its new name is refused."""
    used = vars(parsed).pop(RENAMED, None) or []
    given = {a.split("=")[0] for a in args if a.startswith("--")}
    for old, new in used:
        both = given.intersection(new)
        if both:
            where.error(f"{old} is the old name of {sorted(both)[0]}: give one")
        if not getattr(parsed, "quiet", False):
            print(
                f"{where.prog}: {old} is deprecated and will be removed in the "
                f"next release; use {new[0]} (named as the Python argument)",
                file=sys.stderr,
            )


def _hint(parser, extra) -> str:
    """'; did you mean --learning-rate?' for the first unknown flag."""
    import difflib
    import re

    flags = sorted(set(re.findall(r"--[a-z][a-z0-9-]*", parser.format_help())))
    for word in extra:
        if word.startswith("--"):
            word = word.split("=")[0].replace("_", "-")
            close = [f for f in flags if _initials(f) == word[2:]]  # --lr
            close += difflib.get_close_matches(word, flags, n=1, cutoff=0.7)
            if close:
                return f"; did you mean {close[0]}?"
    return ""


def _initials(flag: str) -> str:
    return "".join(part[:1] for part in flag[2:].split("-"))


def _image_size(text: str) -> tuple:
    parts = text.lower().replace(",", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1 or max(size) > 4096:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHTxWIDTH such as 64x64 (each at most 4096), got {text!r}"
        )
    return size


# The largest count a flag takes (epochs, batch size, steps ahead, pixels...):
# beyond it a number is a typo, and TensorFlow would overflow or run for days
# (hostile review of issue 26: --batch-size 1e20 ended in a traceback).
MAX_COUNT = 10**7


def positive(kind, most=None):
    most = MAX_COUNT if most is None and kind is int else most

    def parse(text: str):
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or not 0 < value < float("inf") or value != value:
            raise argparse.ArgumentTypeError(
                f"expected a positive {'finite ' * (kind is float)}"
                f"{kind.__name__}, got {text!r}"
            )
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"expected at most {most:,}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 0.9:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 0.9], got {text!r}")
    return value


def between(low: float, high: float, *, open_low: bool, open_high: bool):
    """A number in an interval, e.g. (0, 1) or [0, 1]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = None
        inside = value is not None and (
            (low < value if open_low else low <= value)
            and (value < high if open_high else value <= high)
        )
        if not inside:
            left = "(" if open_low else "["
            right = ")" if open_high else "]"
            shown = f"{left}{low:g}, {high:g}{right}"
            raise argparse.ArgumentTypeError(
                f"expected a number in {shown}, got {text!r}"
            )
        return value

    parse.__name__ = "number"
    return parse


def common_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error"
    )
    return p


def data_parent() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("data (see kdl.datasets.load)")
    g.add_argument(
        "--target", help="the column to predict (CSV) or the label array's name (.npz)"
    )
    g.add_argument(
        "--features", help="comma-separated input columns (default: every other column)"
    )
    g.add_argument("--task", choices=TASKS, help="default: inferred from the target")
    g.add_argument(
        "--test-size",
        type=fraction,
        default=0.2,
        help="fraction held out for testing (default 0.2)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split and of training (default 0)",
    )
    g.add_argument("--window", type=positive(int), help="series: steps per window")
    g.add_argument(
        "--horizon",
        type=positive(int),
        default=1,
        help="series: steps ahead to forecast (default 1)",
    )
    g.add_argument(
        "--image-size",
        type=_image_size,
        default=None,
        help="image folders: HEIGHTxWIDTH (default: the model's, else 256x256)",
    )
    g.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale", "rgba"),
        default=None,
        help="image folders (default: the model's, else rgb)",
    )
    g.add_argument(
        "--missing",
        choices=("error", "drop"),
        default="error",
        help="CSV: refuse rows with empty cells, or drop them",
    )
    return p

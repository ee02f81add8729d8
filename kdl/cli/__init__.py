"""The ``kdl`` command: a thin layer over kdl's public functions.

    kdl train wine.csv --target label --model mlp --epochs 30 --out wine.keras
    kdl predict wine.keras new_wines.csv --out predictions.csv
    kdl evaluate wine.keras wine.csv
    kdl export wine.keras wine.tflite --quantization int8 --data wine.csv
    kdl info wine.tflite

Every command reads data with :func:`kdl.datasets.load` and works through the
same public functions as Python code (``kdl.train``, ``kdl.tune``,
``kdl.compression``, ``kdl.export``, ``kdl.privacy``, ``kdl.rl``,
``kdl.report``); no logic lives only here. A mistake in the arguments or the
data prints one line on stderr and exits with status 2; arguments and files
are checked before TensorFlow is imported.
"""

from __future__ import annotations

import os
import sys

from kdl.cli._parser import build_parser
from kdl.cli._streams import command_streams

__all__ = ["main", "build_parser"]


def _command(args):
    from kdl.cli import _compress_commands as s
    from kdl.cli import _model_commands as m
    from kdl.cli import _workflow_commands as w

    if args.command == "privacy":
        return {"epsilon": w.cmd_privacy_epsilon, "train": w.cmd_privacy_train}[
            args.privacy_command
        ]
    return {
        "train": m.cmd_train,
        "predict": m.cmd_predict,
        "evaluate": m.cmd_evaluate,
        "info": m.cmd_info,
        "tune": w.cmd_tune,
        "compress": w.cmd_compress,
        "compress shrink": s.cmd_shrink,
        "compress distill": s.cmd_distill,
        "export": w.cmd_export,
        "rl": w.cmd_rl,
        "report": w.cmd_report,
    }[args.command]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if isinstance(err, KeyError) or not text:
        text = f"{type(err).__name__}: {text}"
    return text


def main(argv=None) -> int:
    """Runs the ``kdl`` command; returns its exit status.

    Args:
        argv: list of str or None. The arguments (default: ``sys.argv[1:]``).

    Returns:
        int: 0 on success, 2 for a mistake in the arguments or the data,
        130 after Ctrl-C, 141 when the reader of stdout closed it early.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compress"] and argv[1:2] in (["shrink"], ["distill"]):
        argv[:2] = [f"compress {argv[1]}"]  # one sub-command (see _parser)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        code = 0 if exit_.code is None else int(exit_.code)
        return _flushed("kdl", code)  # --help, --version: their output too
    name = (
        "kdl "
        + args.command
        + (f" {args.privacy_command}" if args.command == "privacy" else "")
    )
    try:
        return _flushed(name, _run(args, name))
    except KeyboardInterrupt:
        # Ctrl-C: one line, the shell's status for it; every file kdl writes
        # is written atomically, so none is left half-written
        if args.debug:
            raise
        print(f"{name}: interrupted", file=sys.stderr, flush=True)
        return 128 + 2
    except BrokenPipeError:
        # the reader of stdout stopped (`kdl predict ... | head`): exit as a
        # C tool killed by SIGPIPE would, without a message
        _silence(sys.stdout)
        return 128 + 13


def _flushed(name: str, code: int) -> int:
    """``code``, once stdout's last bytes are written; 1 with one line when
    they cannot be (a full disk, /dev/full): a result lost is a failure."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as err:
        _silence(sys.stdout)
        print(f"{name}: cannot write the result to stdout ({err.strerror or err})",
              file=sys.stderr, flush=True)  # fmt: skip
        return code or 1
    return code


def _too_big(err) -> bool:
    """Out of memory or a number too large for TensorFlow: the size the user
    asked for (a width, a batch) is the mistake."""
    names = {"ResourceExhaustedError", "OverflowError", "MemoryError"}
    return type(err).__name__ in names or isinstance(err, (MemoryError, OverflowError))


def _silence(stream) -> None:
    """Points a closed pipe's descriptor at /dev/null (so that Python's
    final flush cannot fail on it; Python's documented recipe)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def _run(args, name: str) -> int:
    with command_streams(getattr(args, "quiet", False)) as errors:
        try:
            return _command(args)(args)
        except BrokenPipeError:
            raise
        except Exception as err:  # noqa: BLE001 - only the kinds below
            # ValueError covers kdl.errors.UnsupportedModelError and, through
            # it, the converter's ConverterCrashError and ExportCheckError.
            mistake = isinstance(err, (ValueError, TypeError, OSError))
            if args.debug or not (mistake or _too_big(err)):
                raise
            message = _one_line(err)
            if _too_big(err) and not mistake:
                kind = type(err).__name__
                message = f"ran out of memory or range ({kind}): a size asked "
                message += f"for is too large: {_one_line(err)[:300]}"
            prefix = "" if message.startswith(name) else f"{name}: "
            print(f"{prefix}{message}", file=errors, flush=True)
            return 2


if __name__ == "__main__":
    sys.exit(main())

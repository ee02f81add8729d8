"""A run's history across sessions: history.csv, the resume bookkeeping, the plot.

Used by :mod:`kdl.training`. BackupAndRestore brings back the weights, the
optimizer and the epoch counter of an interrupted fit, but not history.csv
nor the state of EarlyStopping, ModelCheckpoint and ReduceLROnPlateau;
:class:`ResumeState` fills that gap.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from kdl._files import atomic_path
from kdl.backend import keras

__all__ = ["read_history", "to_float", "ResumeState", "merge_history", "plot_history"]

# Callbacks whose "best so far" and patience count ResumeState replays.
_WATCHERS = (
    keras.callbacks.EarlyStopping,
    keras.callbacks.ModelCheckpoint,
    keras.callbacks.ReduceLROnPlateau,
)


def read_history(path: Path) -> list[dict]:
    """The rows of a history.csv (an empty list when there is none)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def to_float(text):
    """A CSV cell as a float, or as it is when it is not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _keep_rows(path: Path, epoch: int | None) -> None:
    """Drops the rows of epochs ``>= epoch`` from history.csv, in place."""
    with open(path, "r+", newline="") as f:
        lines = f.readlines()
        header, rows = lines[:1], lines[1:]
        kept = [
            line
            for line in rows
            if line.split(",", 1)[0].strip().isdigit()
            and (epoch is None or int(line.split(",", 1)[0]) < epoch)
        ]
        # Truncate in place: CSVLogger already holds the file open for
        # appending, so replacing the file would hide its next rows.
        f.seek(0)
        f.writelines(header + kept)
        f.truncate()


def _monitored(rows: list[dict], monitor: str) -> list[tuple[int, float]]:
    values = [(int(r["epoch"]), to_float(r.get(monitor))) for r in rows]
    return [(e, x) for e, x in values if isinstance(x, float)]


class ResumeState(keras.callbacks.Callback):
    """Makes a resumed run continue where the killed one stopped.

    At the first epoch of a resumed fit it drops the history rows of epochs
    that will run again and replays the kept rows into EarlyStopping,
    ModelCheckpoint and ReduceLROnPlateau (their best value and patience
    count reset at every ``fit``, and Keras has no API to carry them over).

    Args:
        history_csv: Path. The run's history.csv.
        callbacks: the callbacks of the run whose state is replayed.
        read_only: bool. Replay without touching the file: a non-chief worker
            of a multi-worker run reads the chief's history. Defaults to
            `False`.
    """

    def __init__(self, history_csv: Path, callbacks: Sequence, *, read_only=False):
        super().__init__()
        self.history_csv = Path(history_csv)
        self.read_only = read_only
        self.callbacks = list(callbacks)
        self.initial_epoch = None
        self.kept_rows: list[dict] = []

    def on_epoch_begin(self, epoch, logs=None):
        if self.initial_epoch is None:
            self._reconcile(epoch)

    def on_train_end(self, logs=None):
        # No epoch ran: the run was killed after its last epoch was backed up
        # but before it finished. Keep every row and the best weights.
        if self.initial_epoch is None:
            self._reconcile(None)

    def _reconcile(self, epoch):
        """Keeps history rows of epochs before ``epoch`` (all for None)."""
        self.initial_epoch = epoch
        if not self.history_csv.exists():
            return
        if not self.read_only:
            _keep_rows(self.history_csv, epoch)
        self.kept_rows = [
            row
            for row in read_history(self.history_csv)
            if str(row.get("epoch", "")).strip().isdigit()
            and (epoch is None or int(row["epoch"]) < epoch)
        ]
        if epoch is None:
            self.initial_epoch = len(self.kept_rows)
        if self.kept_rows:
            for cb in self.callbacks:
                if isinstance(cb, _WATCHERS):
                    self._replay(cb, _monitored(self.kept_rows, cb.monitor))

    def _replay(self, cb, values):
        if not values:
            return
        if isinstance(cb, keras.callbacks.ModelCheckpoint):
            for _, value in values:
                if cb.monitor_op(value, cb.best):
                    cb.best = value
            return
        early = isinstance(cb, keras.callbacks.EarlyStopping)
        # EarlyStopping's own test honours min_delta and its baseline.
        improves = cb._is_improvement if early else cb.monitor_op
        best, best_epoch, wait = cb.best, None, 0
        for epoch, value in values:
            wait += 1
            if improves(value, best):
                best, best_epoch, wait = value, epoch, 0
        cb.best, cb.wait = best, wait
        if early and best_epoch is not None:
            cb.best_epoch = best_epoch
            if cb.restore_best_weights:
                cb.best_weights = self._best_weights(cb.monitor)

    def _best_weights(self, monitor):
        """The weights of the best epoch, from best.keras when it tracks them.

        Only the weights are read (no model config, so no custom objects and
        no Python code), through the model itself, which is then put back.
        """
        for cb in self.callbacks:
            path = str(getattr(cb, "filepath", ""))
            if (
                isinstance(cb, keras.callbacks.ModelCheckpoint)
                and cb.monitor == monitor
                and path.endswith(".keras")
                and Path(path).exists()
            ):
                current = self.model.get_weights()
                try:
                    self.model.load_weights(path)
                    return self.model.get_weights()
                except (ValueError, OSError):
                    return None
                finally:
                    self.model.set_weights(current)
        return None


def merge_history(history, earlier: list[dict]) -> None:
    """Puts the rows of earlier sessions in front of a Keras ``History``."""
    if not earlier:
        return
    merged = {k: [to_float(r[k]) for r in earlier] for k in earlier[0] if k != "epoch"}
    for key, values in history.history.items():
        merged.setdefault(key, [math.nan] * len(earlier))
        merged[key] = merged[key] + list(values)
    history.history = merged
    history.epoch = [int(r["epoch"]) for r in earlier] + list(history.epoch)


# Matplotlib's first two colours, so the plot looks like the user's own.
_COLOURS = {"train": (31, 119, 180), "validation": (255, 127, 14)}
_PANEL = (420, 300)  # pixels per metric
_MARGIN = (62, 14, 30, 40)  # left, right, top, bottom


def _curves(rows: list[dict]) -> dict[str, dict[str, list[float]]]:
    """{metric: {"train": values, "validation": values}} from history rows."""
    names = sorted(
        (
            k
            for k in rows[0]
            if k not in ("epoch", "lr", "learning_rate") and not k.startswith("val_")
        ),
        key=lambda k: (k != "loss", k),
    )
    curves = {}
    for name in names:
        curves[name] = {}
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in rows[0]:
                values = [to_float(r[key]) for r in rows]
                curves[name][label] = [
                    x if isinstance(x, float) else math.nan for x in values
                ]
    return curves


def _ticks(low: float, high: float) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) around the data."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step)
    count = math.ceil(high / step) - first
    return [(first + i) * step for i in range(count + 1)]


def _draw_panel(draw, origin, name, epochs, curves, font) -> None:
    """One metric: frame, ticks, the curves, title and legend."""
    left, top = origin[0] + _MARGIN[0], origin[1] + _MARGIN[2]
    right = origin[0] + _PANEL[0] - _MARGIN[1]
    bottom = origin[1] + _PANEL[1] - _MARGIN[3]
    finite = [x for v in curves.values() for x in v if math.isfinite(x)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    yticks = _ticks(low, high)
    low, high = yticks[0], yticks[-1]
    first, last = epochs[0], max(epochs[-1], epochs[0] + 1)

    def xy(epoch, value):
        x = left + (epoch - first) / (last - first) * (right - left)
        return x, bottom - (value - low) / (high - low) * (bottom - top)

    draw.rectangle((left, top, right, bottom), outline=(0, 0, 0))
    for value in yticks:
        y = xy(first, value)[1]
        draw.line((left - 4, y, left, y), fill=(0, 0, 0))
        draw.text((left - 6, y), f"{value:.4g}", fill=(0, 0, 0), font=font, anchor="rm")
    step = max(1, math.ceil(len(epochs) / 8))
    for epoch in epochs[::step]:
        x = xy(epoch, low)[0]
        draw.line((x, bottom, x, bottom + 4), fill=(0, 0, 0))
        draw.text((x, bottom + 6), str(epoch), fill=(0, 0, 0), font=font, anchor="mt")
    draw.text(
        ((left + right) / 2, bottom + 22),
        "epoch",
        fill=(0, 0, 0),
        font=font,
        anchor="mt",
    )
    draw.text(
        ((left + right) / 2, top - 8), name, fill=(0, 0, 0), font=font, anchor="mb"
    )
    for i, (label, values) in enumerate(curves.items()):
        points = [xy(e, x) for e, x in zip(epochs, values) if math.isfinite(x)]
        colour = _COLOURS[label]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2, joint="curve")
        for x, y in points:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
        ly = top + 10 + 16 * i
        draw.line((right - 110, ly, right - 90, ly), fill=colour, width=2)
        draw.text((right - 85, ly), label, fill=(0, 0, 0), font=font, anchor="lm")


def plot_history(rows: list[dict], path: Path) -> None:
    """Writes the loss and metric curves, one panel per metric, as a PNG.

    Drawn with Pillow (which Matplotlib itself depends on) rather than
    Matplotlib: the same picture in a few milliseconds, where Matplotlib's
    import and text layout took about a second in a fresh process and 0.25 s
    of CPU in a warm one, the largest fixed cost of a short kdl.train
    (issue 18).
    """
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        return
    curves = _curves(rows)
    epochs = [int(r["epoch"]) + 1 for r in rows]
    image = Image.new("RGB", (_PANEL[0] * max(1, len(curves)), _PANEL[1]), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for i, (name, panel) in enumerate(curves.items()):
        _draw_panel(draw, (i * _PANEL[0], 0), name, epochs, panel, font)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")

"""kdl predict --next N: forecasts past the last row of a series CSV.

A series model reads ``window`` rows and forecasts the target ``horizon`` rows
after the last of them (kdl.datasets.make_windows). The value at row ``L + k``
(``L`` the file's last row) is read from the window that ends at row
``L + k - horizon``: for ``k <= horizon`` every row of it is in the file; past
that the window holds earlier forecasts, which only a series of one column
(the target itself) can supply. The forecasts are made ``horizon`` at a time,
each batch reading the file and the batches before it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kdl.cli import _common as c

__all__ = ["forecast_table"]


def _series_rows(path: str, names: list, needed: int):
    """The file's last ``needed`` rows of ``names`` as float32 (checked), and
    its number of rows."""
    import pandas as pd

    if not Path(path).is_file():
        raise FileNotFoundError(f"kdl predict: DATA {path!r}: no such file")
    frame = pd.read_csv(path)
    absent = [n for n in names if n not in frame.columns]
    if absent:
        raise c.CommandError(
            f"kdl predict --next: {path} has no column {absent[0]!r} (the model "
            f"reads {', '.join(map(str, names))}; its columns: "
            f"{', '.join(map(str, frame.columns))})"
        )
    if len(frame) < needed:
        raise c.CommandError(
            f"kdl predict --next: {path} has {len(frame)} rows; the forecasts "
            f"read its last {needed} (window + horizon - 1)"
        )
    tail = frame[names].iloc[-needed:]
    values = tail.apply(pd.to_numeric, errors="coerce").to_numpy("float64")
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        raise c.CommandError(
            f"kdl predict --next: {path} row {tail.index[i] + 1}, column "
            f"{names[j]!r}: expected a number, got {tail.iloc[i, j]!r}"
        )
    return values.astype("float32"), len(frame)


def forecast_table(args, model, schema):
    """The --next forecasts of ``model`` after DATA's last row, as a table:
    row (the row number it would have), step (1 = the next row), prediction."""
    import pandas as pd

    if schema.get("kind") != "series":
        raise c.CommandError(
            f"kdl predict --next: forecasts past the last row of a series; "
            f"{args.model} was trained on a {schema.get('kind')} "
            f"(kdl train DATA --window N makes a series model)"
        )
    window, horizon = int(schema["window"]), int(schema["horizon"])
    names = list(schema["feature_names"])
    recursive = names == [schema.get("target")]
    if args.next > horizon and not recursive:
        raise c.CommandError(
            f"kdl predict --next {args.next}: this model reads columns "
            f"{', '.join(map(str, names))} to forecast {schema.get('target')!r}, "
            f"so it forecasts at most {horizon} row(s) past the last (its "
            "horizon): the other columns are unknown beyond the file"
        )
    tail, last = _series_rows(args.data, names, window + horizon - 1)
    known = list(tail)  # the file's last rows, then the forecasts
    first = len(known) - horizon  # the first window ends before known[first + 1]
    forecasts = []
    while len(forecasts) < args.next:
        count = min(horizon, args.next - len(forecasts))
        ends = [first + len(forecasts) + i + 1 for i in range(count)]
        x = np.stack([np.stack(known[e - window : e]) for e in ends]).astype("float32")
        out = np.asarray(c.predict(model, x), dtype="float32").reshape(count)
        forecasts.extend(float(v) for v in out)
        known.extend(np.array([v], "float32") for v in out)
    steps = np.arange(1, args.next + 1)
    return pd.DataFrame({"row": last + steps, "step": steps, "prediction": forecasts})

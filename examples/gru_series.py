"""A GRU forecasting a time series: next year's sunspots from the last 24 years.

``datasets.sunspots(window=24)`` cuts statsmodels' yearly sunspot numbers
(1700-2008) into windows of 24 years, each labelled with the next year, split
in time (the test years come after the training years) and scaled by the
training maximum. A GRU regression model (``task="regression"``: linear output,
mean squared error) learns the forecast; it is compared with the naive
forecast "next year is like this year", and the test forecasts are drawn
against the truth.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/gru_series.py

Writes saved_models/gru_series/forecast.png.
"""

from __future__ import annotations

import numpy as np
from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets


def main() -> None:
    banner()
    out = out_dir("gru_series")
    (x, y), (x_test, y_test) = datasets.sunspots(window=24)
    print(
        f"{len(x)} training windows, {len(x_test)} test windows of {x.shape[1]} years"
    )

    kdl.set_seed(0)
    model = kdl.build_gru(x.shape[1:], 1, task="regression", units=(32,))
    kdl.train(
        model,
        x,
        y,
        validation_split=0.15,
        epochs=pick(60, 2),
        batch_size=16,
        patience=10,
        run_dir=False,  # no run folder: just the early stopping
        verbose=0,
    )
    forecast = model.predict(x_test, verbose=0)[:, 0]
    gru_mae = np.mean(np.abs(forecast - y_test[:, 0]))
    naive_mae = np.mean(np.abs(x_test[:, -1, 0] - y_test[:, 0]))
    print(f"test MAE: GRU {gru_mae:.4f}, repeat-last-year forecast {naive_mae:.4f}")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(y_test[:, 0], label="sunspots (scaled)", color="black")
    ax.plot(forecast, label=f"GRU forecast (MAE {gru_mae:.3f})")
    ax.plot(x_test[:, -1, 0], label=f"last year (MAE {naive_mae:.3f})", alpha=0.6)
    ax.set(xlabel="test year", ylabel="sunspots / training max")
    ax.legend()
    save_figure(fig, out / "forecast.png")


if __name__ == "__main__":
    main()

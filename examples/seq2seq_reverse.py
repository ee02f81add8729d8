"""Encoder-decoder: a GRU sequence-to-sequence model, with and without attention.

``datasets.toy_translation()`` is a generated "translation": the target is
the source sentence reversed, each word mapped to another vocabulary. The
encoder reads the source into a state; the decoder writes the target one token
at a time from that state (teacher forcing in training, its own previous
token in ``kdl.greedy_decode``). Attention lets the decoder look back at every
encoder step, which makes reversal easy. The script prints a few decoded
sentences and the exact-match rate of both models.

Run it (add ``--quick``, or set ``KDL_QUICK=1``, for a short smoke run):

    python examples/seq2seq_reverse.py

Writes saved_models/seq2seq_reverse/exact_match.png and samples.txt.
"""

from __future__ import annotations

import numpy as np
from _quick import banner, out_dir, pick, plt, save_figure

import kdl
from kdl import datasets


def exact_match(model, task, count: int) -> tuple[float, np.ndarray]:
    """Exact-match rate of greedy decoding on the first `count` test sentences."""
    (source, _), target = task.test
    source, target = source[:count], target[:count]
    decoded = kdl.greedy_decode(
        model,
        source,
        start_id=task.start_id,
        end_id=task.end_id,
        max_length=task.max_length,
    )
    width = min(decoded.shape[1], target.shape[1])
    same = (decoded[:, :width] == target[:, :width]).all(axis=1)
    return float(same.mean()), decoded


def main() -> None:
    banner()
    out = out_dir("seq2seq_reverse")
    task = datasets.toy_translation(num_examples=pick(6000, 300))
    (source, decoder_input), target = task.train
    epochs = pick(15, 1)

    scores, lines = {}, []
    # The short mode trains only the model with attention (tracing is slow).
    for attention in pick((False, True), (True,)):
        kdl.set_seed(0)
        model = kdl.build_seq2seq(
            task.input_vocab_size, task.output_vocab_size, units=64, attention=attention
        )
        model.fit(
            [source, decoder_input], target, epochs=epochs, batch_size=64, verbose=0
        )
        label = "attention" if attention else "no attention"
        scores[label], decoded = exact_match(model, task, pick(1000, 20))
        print(f"{label:12s} exact match on the test sentences: {scores[label]:.3f}")
        (test_source, _), test_target = task.test
        for i in range(3):
            lines.append(
                f"{label}: source {test_source[i].tolist()} -> decoded "
                f"{decoded[i].tolist()} (target {test_target[i].tolist()})"
            )
    (out / "samples.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.bar(list(scores), list(scores.values()), color="tab:blue")
    ax.set(ylabel="exact match", ylim=(0, 1), title="reverse and translate")
    save_figure(fig, out / "exact_match.png")


if __name__ == "__main__":
    main()

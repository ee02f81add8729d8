"""Labels on a scatter plot that never overlap (kdl.report's size/metric plot).

Matplotlib places annotations where they are told; this module finds each a
free offset (issue 13). It is also ``kdl.report.place_labels``.
"""

from __future__ import annotations

# offsets (points) tried in turn for a label: right of the point, then above
# and below it at growing distances, then to its left
_OFFSETS = tuple(
    (dx, dy)
    for step in range(12)
    for dx, dy in ((6, 4 + 11 * step), (6, -12 - 11 * step))
) + tuple((-6, 4 + 11 * step) for step in range(6))


def _text_box(note, renderer):
    """The display box of an annotation's text (without its line)."""
    from matplotlib.text import Text

    note.update_positions(renderer)
    return Text.get_window_extent(note, renderer)


def place_labels(ax, points, labels) -> list:
    """Annotates each point with its label so that no two labels overlap.

    Labels go right of their point when there is room, else at the nearest
    free offset above or below it (with a thin line back to the point), so
    that variants of the same size and metric stay readable (issue 13).

    Returns:
        list: the matplotlib annotations, in the order of ``points``.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    placed, annotations = [], []
    for (px, py), label in zip(points, labels, strict=True):
        for dx, dy in _OFFSETS:
            note = ax.annotate(
                label,
                (px, py),
                textcoords="offset points",
                xytext=(dx, dy),
                ha="left" if dx > 0 else "right",
                fontsize=8,
                arrowprops=None if dy in (4, -12) else {"arrowstyle": "-", "lw": 0.5},
            )
            box = _text_box(note, renderer).expanded(1.02, 1.1)
            if not any(box.overlaps(other) for other in placed):
                break
            note.remove()
        else:  # every offset taken: keep the last one tried
            note = ax.annotate(
                label,
                (px, py),
                textcoords="offset points",
                xytext=(dx, dy),
                ha="right",
                fontsize=8,
            )
            box = _text_box(note, renderer)
        placed.append(box)
        annotations.append(note)
    return annotations

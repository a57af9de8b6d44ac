"""The training loss curve as an inline SVG, so the dashboard needs no chart library."""

from __future__ import annotations

import math

from markupsafe import Markup

WIDTH, HEIGHT = 640, 280
# Space for the axis labels: left, right, top, bottom.
MARGIN = (56, 16, 16, 40)
SERIES = (("train_loss", "train", "chart-train"), ("val_loss", "validation", "chart-val"))


def loss_chart_svg(epochs: list[dict]) -> Markup:
    """Draw train and validation loss per epoch; epochs without a finite loss are skipped.

    The x axis counts epochs over the whole run: each stage (reconstruction, contrastive, head)
    numbers its own epochs from 0, so a stage's numbers would overlap the previous stage's.
    Only numbers from `epochs` reach the markup, each formatted as a number.
    """
    points = {key: [] for key, _, _ in SERIES}
    for epoch, entry in enumerate(epochs, start=1):
        for key, _, _ in SERIES:
            value = _finite(entry.get(key), None)
            if value is not None:
                points[key].append((epoch, value))
    every = [p for series in points.values() for p in series]
    if not every:
        return Markup("")

    x_low, x_high = min(p[0] for p in every), max(p[0] for p in every)
    y_low, y_high = min(0.0, min(p[1] for p in every)), max(p[1] for p in every)
    if x_high == x_low:
        x_high = x_low + 1
    if y_high == y_low:
        y_high = y_low + 1
    left, right, top, bottom = MARGIN
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom

    def x(value: float) -> float:
        return left + (value - x_low) / (x_high - x_low) * plot_w

    def y(value: float) -> float:
        return top + (1 - (value - y_low) / (y_high - y_low)) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title">',
        '<title id="chart-title">Training and validation loss per epoch</title>',
        f'<line class="chart-axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}"/>',
        f'<line class="chart-axis" x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}"/>',
    ]
    for fraction in (0.0, 0.5, 1.0):
        value = y_low + fraction * (y_high - y_low)
        parts.append(f'<text class="chart-label" x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.3g}</text>')
    for value in sorted({x_low, x_high}):
        parts.append(
            f'<text class="chart-label" x="{x(value):.1f}" y="{HEIGHT - bottom + 18}" text-anchor="middle">{value:g}</text>'
        )
    parts.append(f'<text class="chart-label" x="{left + plot_w / 2:.1f}" y="{HEIGHT - 4}" text-anchor="middle">epoch of the run</text>')
    for index, (key, label, css) in enumerate(SERIES):
        series = points[key]
        if not series:
            continue
        coordinates = " ".join(f"{x(e):.1f},{y(v):.1f}" for e, v in series)
        parts.append(f'<polyline class="{css}" fill="none" points="{coordinates}"/>')
        for e, v in series:
            parts.append(f'<circle class="{css}" cx="{x(e):.1f}" cy="{y(v):.1f}" r="3"/>')
        legend_y = top + 14 + index * 18
        parts.append(f'<line class="{css}" x1="{left + plot_w - 130}" y1="{legend_y - 4}" x2="{left + plot_w - 110}" y2="{legend_y - 4}"/>')
        parts.append(f'<text class="chart-label" x="{left + plot_w - 104}" y="{legend_y}">{label}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def format_loss(value) -> str:
    """Format a loss for the epochs table: four significant digits, or a dash when it is missing."""
    number = _finite(value, None)
    return "–" if number is None else f"{number:.4g}"


def _finite(value, default):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return default
    return float(value)

"""Charts for the HTML page, drawn with matplotlib and inlined as PNG data URIs (no network)."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from qcheck.cache import Cache
from qcheck.compare.visuals import HISTOGRAM_EDGES, TargetVisuals
from qcheck.limits import Thresholds
from qcheck.results import Attribution, ranked_by_relief

__all__ = [
    "attribution_chart",
    "bias_chart",
    "figure_png",
    "histogram_chart",
    "image_rows",
    "keep_in",
    "new_figure",
    "predraw",
]

_CHANNEL_COLOURS = {"r": "#d1242f", "g": "#1a7f37", "b": "#0969da"}


def new_figure(width: float, height: float) -> tuple[Any, Any]:
    # Figures made without pyplot have no global state, so charts can be drawn on the
    # comparison threads while other targets are still converting.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure, figure.subplots()


def figure_png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


_DRAWN: dict[tuple[Any, ...], Any] = {}
# matplotlib is not thread-safe (its text parser has global state): one chart at a time.
_DRAWING = threading.Lock()
_STORE: list[Cache] = []


def keep_in(cache: Cache | None) -> None:
    """Keep drawn charts in ``cache`` too: a warm re-run then neither imports matplotlib
    (a third of a second) nor draws anything."""
    _STORE[:] = [cache] if cache is not None and cache.enabled else []


def _memo(key: tuple[Any, ...], draw: Callable[[], Any]) -> Any:
    """Charts drawn ahead of the page (``predraw``) are drawn once."""
    with _DRAWING:
        if key not in _DRAWN:
            if len(_DRAWN) > 256:
                _DRAWN.clear()
            _DRAWN[key] = _stored(key, draw)
        return _DRAWN[key]


def _stored(key: tuple[Any, ...], draw: Callable[[], Any]) -> Any:
    if not _STORE:
        return draw()
    cache, entry = _STORE[0], Cache.key(chart=repr(key))
    found = cache.get_json(entry, "chart.json")
    if found is not None:
        return found
    drawn = draw()
    cache.put_json(entry, "chart.json", drawn)
    return drawn


def predraw(channel_bias: dict[str, float] | None, visuals: TargetVisuals | None,
            passed: bool, thresholds: Thresholds) -> None:
    """Draw one target's charts now (on a comparison thread) for the page to reuse."""
    if channel_bias:
        bias_chart(channel_bias, thresholds.max_channel_bias)
    if visuals is not None:
        histogram_chart(visuals, thresholds.max_delta_e)
        if not passed:
            image_rows(visuals)


def bias_chart(channel_bias: dict[str, float], limit: float) -> str:
    return str(_memo(("bias", tuple(sorted(channel_bias.items())), limit),
                     lambda: _bias_chart(channel_bias, limit)))


def _bias_chart(channel_bias: dict[str, float], limit: float) -> str:
    figure, axes = new_figure(3.2, 2.2)
    names = list(channel_bias)
    values = [channel_bias[n] for n in names]
    axes.bar(names, values, color=[_CHANNEL_COLOURS.get(n, "grey") for n in names])
    for sign in (1, -1):
        axes.axhline(sign * limit, color="#888", linestyle="--", linewidth=0.8)
    span = max(limit * 1.3, max(abs(v) for v in values) * 1.2, 0.5)
    axes.set_ylim(-span, span)
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_ylabel("mean bias (8-bit levels)")
    axes.set_title("channel bias", fontsize=9)
    return figure_png(figure)


def histogram_chart(visuals: TargetVisuals, limit: float) -> str:
    return str(_memo(("histogram", visuals.digest(), limit),
                     lambda: _histogram_chart(visuals, limit)))


def _histogram_chart(visuals: TargetVisuals, limit: float) -> str:
    figure, axes = new_figure(3.6, 2.2)
    edges = HISTOGRAM_EDGES[:-1]
    counts = visuals.histogram.astype(float)
    share = counts / max(counts.sum(), 1.0)
    axes.bar(edges, share[: len(edges)], width=0.25, align="edge", color="#6e7781")
    axes.axvline(limit, color="#cf222e", linestyle="--", linewidth=0.8)
    axes.set_xlabel("CIEDE2000 per pixel")
    axes.set_ylabel("share of pixels")
    axes.set_yscale("log")
    axes.set_title(f"ΔE histogram ({share[-1]:.2%} ≥ 10)", fontsize=9)
    return figure_png(figure)


def attribution_chart(attribution: Sequence[Attribution], threshold: float) -> str:
    with _DRAWING:
        return _attribution_chart(attribution, threshold)


def _attribution_chart(attribution: Sequence[Attribution], threshold: float) -> str:
    """The measured layers by relief (what keeping each float buys on the real artifact),
    with the simulated figure beside each bar where it differs; without measured layers, the
    simulation's ranking."""
    measured = any(a.relief is not None for a in attribution)
    top = [a for a in ranked_by_relief(attribution) if a.relief is not None or not measured
           ][:10][::-1]
    figure, axes = new_figure(5.4, 0.35 * len(top) + 0.9)
    labels = [f"{a.layer} · {a.cause.value}" for a in top]
    colour = top[0].measure == "delta_e" if top else True
    unit = top[0].unit if top else "ΔE"
    if measured:
        values = [a.relief or 0.0 for a in top]
        axes.barh(labels, values, color="#0969da")
        axes.scatter([a.drift for a in top], labels, color="#6e7781", marker="|", s=90,
                     zorder=3)
        axes.axvline(0.0, color="#6e7781", linewidth=0.6)
        axes.set_xlabel(f"{unit} relieved when kept float (measured)\n"
                        "ticks: simulated, one layer")
    else:
        values = [a.drift for a in top]
        colours = ["#cf222e" if colour and v > threshold else "#6e7781" for v in values]
        axes.barh(labels, values, color=colours)
        if colour:
            axes.axvline(threshold, color="#cf222e", linestyle="--", linewidth=0.8)
        axes.set_xlabel(f"{unit} when only this layer is quantized this way (simulated)")
    axes.tick_params(axis="y", labelsize=8)
    axes.set_title("attribution by Keras layer", fontsize=9)
    return figure_png(figure)


def image_rows(visuals: TargetVisuals) -> list[dict[str, Any]]:
    """float | target | ΔE heatmap, for each of the worst evaluation images."""
    return list(_memo(("images", visuals.digest()), lambda: _image_rows(visuals)))


def _image_rows(visuals: TargetVisuals) -> list[dict[str, Any]]:
    rows = []
    vmax = max(5.0, float(np.percentile(visuals.delta_e, 99)))
    for index, name in enumerate(visuals.names):
        figure, first = new_figure(7.5, 2.6)
        first.remove()
        panels = figure.subplots(1, 3)
        panels[0].imshow(np.clip(visuals.reference[index], 0, 1), interpolation="nearest")
        panels[0].set_title("float", fontsize=9)
        panels[1].imshow(np.clip(visuals.candidate[index], 0, 1), interpolation="nearest")
        panels[1].set_title("target", fontsize=9)
        heat = panels[2].imshow(visuals.delta_e[index], cmap="magma", vmin=0, vmax=vmax,
                                interpolation="nearest")
        panels[2].set_title("ΔE", fontsize=9)
        figure.colorbar(heat, ax=panels[2], fraction=0.046)
        for panel in panels:
            panel.axis("off")
        rows.append({"name": name, "delta_e": visuals.image_delta_e[index],
                     "image": figure_png(figure)})
    return rows

"""The explorers: where their sliders stop, which mode they pick, and what each mode shows."""

from __future__ import annotations

import json
import re

import pytest
import torch

from siamese_lib import widgets


def frames_of(html: str) -> list[str]:
    return json.loads(re.search(r"var frames = (\[.*?\]), labels", html).group(1))


def test_auto_mode_is_static_only_where_the_book_build_says_so(monkeypatch):
    monkeypatch.delenv(widgets.WIDGETS_ENV, raising=False)
    assert widgets.resolve_mode("auto") == "live"
    monkeypatch.setenv(widgets.WIDGETS_ENV, "static")
    assert widgets.resolve_mode("auto") == "static"
    assert widgets.resolve_mode("live") == "live"
    with pytest.raises(ValueError, match="mode must be one of"):
        widgets.resolve_mode("animated")


def test_slider_positions_hold_the_start_exactly():
    positions = widgets.slider_positions([0.3, 0.1, 0.1 * 3, 0.2], start=0.25)
    assert positions == [0.1, 0.2, 0.25, 0.3]
    assert widgets.slider_positions([1.0, 2.0], start=2.0) == [1.0, 2.0]
    with pytest.raises(ValueError, match="at least one"):
        widgets.slider_positions([], start=1.0)
    with pytest.raises(ValueError, match="finite"):
        widgets.slider_positions([1.0, float("nan")], start=1.0)


def test_threshold_positions_are_closest_where_the_classes_overlap():
    d = torch.cat([torch.linspace(0.0, 1.2, 500), torch.linspace(0.8, 3.0, 500)])
    y = torch.cat([torch.zeros(500), torch.ones(500)]).long()
    positions = widgets.threshold_positions(d, y, n=40)
    assert len(positions) == 40 and positions == sorted(positions)
    assert positions[0] == pytest.approx(0.0) and positions[-1] == pytest.approx(3.0)
    inside = [t for t in positions if 0.8 <= t <= 1.2]
    assert len(inside) > 40 // 2  # a sixth of the range holds more than half the stops
    with pytest.raises(ValueError, match="both similar"):
        widgets.threshold_positions(d, torch.zeros(1000).long())
    with pytest.raises(ValueError, match="finite"):
        widgets.threshold_positions(torch.tensor([]), torch.tensor([]))


def test_static_margin_explorer_opens_at_start_with_one_frame_per_position(monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv(widgets.WIDGETS_ENV, "static")
    html = widgets.margin_explorer([0.5, 1.0, 3.0], start=2.0).data
    frames = frames_of(html)
    assert len(frames) == 4 and len(set(frames)) == 4
    assert 'max="3"' in html and 'value="2"' in html and "<output" in html
    assert json.loads(re.search(r"labels = (\[.*?\]);", html).group(1)) == [
        "0.50", "1.00", "2.00", "3.00"]
    assert re.search(r"<output[^>]*>2\.00</output>", html)


def test_default_margin_positions_step_by_a_tenth():
    pytest.importorskip("matplotlib")
    html = widgets.margin_explorer(mode="static", start=2.0).data
    labels = json.loads(re.search(r"labels = (\[.*?\]);", html).group(1))
    assert labels[0] == "0.10" and labels[-1] == "4.00" and len(labels) == 40
    assert re.search(r"<output[^>]*>2\.00</output>", html)


def test_live_threshold_explorer_redraws_when_the_slider_moves(monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.delenv(widgets.WIDGETS_ENV, raising=False)
    d = torch.tensor([0.1, 0.2, 0.9, 1.1, 1.5, 1.8])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    box = widgets.threshold_explorer(d, y, thresholds=[0.5, 1.0, 1.6], start=1.0)
    slider, out = box.children
    assert slider.value == 1.0 and [label for label, _ in slider.options] == [
        "0.500", "1.000", "1.600"]
    first = out.outputs
    assert first, "the live explorer drew nothing"
    slider.value = 1.6
    assert out.outputs and out.outputs != first

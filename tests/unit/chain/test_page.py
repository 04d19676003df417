"""render_page: the colour form of spec 8, from the table."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from dongyu.core.labels import Label
from dongyu.core.table import ModelTable
from dongyu.ui.page import render_page
from tests.unit.chain.common import runtime


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each element id."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in ("input", "meta", "link"):
            self._open.append(dict(attrs).get("id") or ("label" if tag == "label" else None))

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for key in self._open:
            if key is not None:
                self.text[key] = self.text.get(key, "") + data

    def find(self, tag: str, **attrs: str) -> dict[str, str | None]:
        for name, found in self.tags:
            if name == tag and all(found.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                return found
        raise AssertionError(f"no <{tag} {attrs}>")


def _page(**labels: Any) -> tuple[str, _Elements]:
    table = runtime("color_form").table
    for k, v in labels.items():
        table.put_label(100, (0, 0, 0), Label(k, "str", v))
    html = render_page(table, title="dongyu <test>")
    parsed = _Elements()
    parsed.feed(html)
    return html, parsed


def test_colour_form_elements() -> None:
    html, page = _page()
    assert html.startswith("<!doctype html>")
    assert "<title>dongyu &lt;test&gt;</title>" in html
    colour = page.find("input", type="color")
    assert colour["id"] == "color-100" and colour["value"] == "#ffffff"
    assert colour["data-bind"] == "100:0,0,0:input_value"
    assert re.search(r'<label for="color-100">Color</label>', html)
    button = page.find("button", type="submit")
    assert button["id"] == "submit-100"
    assert re.search(r'<button type="submit" id="submit-100">Submit</button>', html)
    box = page.find("div", id="box-100")
    assert box["data-bind"] == "100:0,0,0:bg_color" and box["data-bind-to"] == "background"
    assert box["style"] == "background-color: #FFFFFF"
    status = page.find("span", id="status-100")
    assert status["data-bind"] == "100:0,0,0:status"
    assert page.text["status-100"] == "ready"
    form = page.find("form", data_model="100")
    assert form["class"] == "color-form"
    assert "fetch('/ui_event'" in html and "new EventSource('/events')" in html


def test_box_painted_with_bg_color_and_status() -> None:
    _, page = _page(bg_color="#FF00FF", status="pod-1: #FF00FF", input_value="#FF00FF")
    assert page.find("div", id="box-100")["style"] == "background-color: #FF00FF"
    assert page.text["status-100"] == "pod-1: #FF00FF"
    assert page.find("input", type="color")["value"] == "#ff00ff"


def test_status_is_escaped() -> None:
    html, page = _page(status="<script>alert('x')</script>&")
    assert "<script>alert(" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in html
    assert page.text["status-100"] == "<script>alert('x')</script>&"
    assert html.count("<script>") == 1  # the page's own script only


@pytest.mark.parametrize(
    "bg",
    [
        "red; background-image: url(http://evil/)",
        '#fff" onmouseover="alert(1)',
        "#FF00FF;position:fixed",
        "expression(alert(1))",
        "",
        "#12",
        "#123456789",
    ],
)
def test_a_bg_color_that_is_not_a_colour_is_not_injected(bg: str) -> None:
    html, page = _page(bg_color=bg)
    assert page.find("div", id="box-100")["style"] == "background-color: #FFFFFF"
    assert "evil" not in html and "onmouseover" not in html and "position:fixed" not in html


@pytest.mark.parametrize("bg", ["#abc", "#A0B1C2", "#a0b1c2ff", "rebeccapurple", "red"])
def test_real_colours_are_used(bg: str) -> None:
    _, page = _page(bg_color=bg)
    assert page.find("div", id="box-100")["style"] == f"background-color: {bg}"


def test_bad_input_value_falls_back_and_is_escaped() -> None:
    html, page = _page(input_value='#"><b>')
    assert page.find("input", type="color")["value"] == "#ffffff"
    html, page = _page(input_value='"/><b>x')
    assert "<b>x" not in html


def test_non_string_labels_and_other_models() -> None:
    table = runtime("color_form", "remote_worker").table
    table.put_label(100, (0, 0, 0), Label("bg_color", "int", 255))
    table.put_label(100, (0, 0, 0), Label("status", "int", 7))
    table.add_model(101, "second <form>", "ui")
    table.put_label(101, (0, 0, 0), Label("ui_type", "str", "color_form"))
    html = render_page(table)
    page = _Elements()
    page.feed(html)
    assert page.find("div", id="box-100")["style"] == "background-color: #FFFFFF"
    assert page.text["status-100"] == "7"
    assert page.find("div", id="box-101")["style"] == "background-color: #FFFFFF"
    assert "second &lt;form&gt;" in html and "second <form>" not in html
    assert html.index('id="box-100"') < html.index('id="box-101"')
    assert 'id="box-2"' not in html  # model 2 has no ui_type


def test_empty_table() -> None:
    html = render_page(ModelTable())
    assert "No model with a ui_type to show." in html
    assert 'type="color"' not in html

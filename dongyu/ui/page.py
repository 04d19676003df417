"""The page the UI server renders from its ModelTable (spec 8: the colour form).

Every model whose cell (0,0,0) has ``ui_type`` = ``color_form`` is shown as a
form: a colour input labelled "Color", a Submit button and a box painted
``bg_color`` showing ``status``. Elements carry ``data-bind`` attributes
(``<model>:<p>,<r>,<c>:<k>``) so the page's script can apply the changes the
server pushes (server-sent events on ``/events``) without a reload.
"""

from __future__ import annotations

import re
from html import escape

from dongyu.core.labels import CONFIG_CELL
from dongyu.core.table import Model, ModelTable

_SCRIPT = r"""
const sendEvent = async (form) => {
  const modelId = Number(form.dataset.model);
  const input = form.querySelector('input[type=color]');
  const opId = 'ui-' + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
  const body = {
    source: 'ui_renderer', type: 'label_add',
    payload: {
      action: 'label_update', meta: {op_id: opId},
      target: {model_id: modelId, p: 0, r: 0, c: 0, k: 'input_value'},
      value: {t: 'str', v: input.value},
    },
  };
  const status = form.querySelector('.send-status');
  form.dataset.lastOpId = opId;
  form.dataset.submitMs = String(Date.now());
  status.textContent = 'sending ' + opId;
  const answer = await fetch('/ui_event', {
    method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body),
  });
  const reply = await answer.json();
  status.textContent = answer.ok ? 'sent ' + reply.op_id : 'refused: ' + reply.reason;
};
const applyChange = (change) => {
  const bind = `${change.model_id}:${change.p},${change.r},${change.c}:${change.k}`;
  for (const el of document.querySelectorAll(`[data-bind="${bind}"]`)) {
    const value = change.removed ? '' : String(change.v);
    if (el.dataset.bindTo === 'background') el.style.backgroundColor = value;
    else if (el.dataset.bindTo === 'value') el.value = value;
    else el.textContent = value;
  }
};
document.querySelectorAll('form.color-form').forEach((form) => {
  form.addEventListener('submit', (ev) => { ev.preventDefault(); sendEvent(form); });
});
const events = new EventSource('/events');
events.addEventListener('changes', (ev) => {
  const message = JSON.parse(ev.data);
  message.changes.forEach(applyChange);
  document.body.dataset.lastDelta = message.op_id || '';
  document.body.dataset.lastPaintMs = String(Date.now());
});
events.addEventListener('open', () => { document.body.dataset.live = 'yes'; });
"""

_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}|[a-z]{3,20}")

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; }
form.color-form { display: flex; gap: 1rem; align-items: center; margin-bottom: 1rem; }
.color-box { width: 16rem; height: 6rem; border: 1px solid #444; display: flex;
             align-items: center; justify-content: center; font-weight: bold; }
.send-status { color: #555; font-size: 0.9rem; }
"""


def _bind(model_id: int, k: str) -> str:
    p, r, c = CONFIG_CELL
    return f"{model_id}:{p},{r},{c}:{k}"


def _label(model: Model, k: str, default: str) -> str:
    label = model.cells.get(CONFIG_CELL, {}).get(k)
    return default if label is None or label.v is None else str(label.v)


def _color_form(model: Model) -> str:
    mid = model.id
    colour = _label(model, "input_value", "#ffffff")
    if not (len(colour) == 7 and colour.startswith("#")):
        colour = "#ffffff"
    bg = _label(model, "bg_color", "#FFFFFF")
    if not _COLOUR.fullmatch(bg):
        bg = "#FFFFFF"
    status = _label(model, "status", "")
    return f"""
<section aria-label="{escape(model.name)}">
  <h2>{escape(model.name)} (model {mid})</h2>
  <form class="color-form" data-model="{mid}">
    <label for="color-{mid}">Color</label>
    <input type="color" id="color-{mid}" name="color" value="{escape(colour.lower())}"
           data-bind="{_bind(mid, "input_value")}" data-bind-to="value">
    <button type="submit" id="submit-{mid}">Submit</button>
    <span class="send-status" role="status"></span>
  </form>
  <div class="color-box" id="box-{mid}" role="img" aria-label="colour box"
       data-bind="{_bind(mid, "bg_color")}" data-bind-to="background"
       style="background-color: {escape(bg)}"><span data-bind="{_bind(mid, "status")}"
       id="status-{mid}">{escape(status)}</span></div>
</section>"""


def render_page(table: ModelTable, title: str = "dongyu") -> str:
    """The whole page, from the table as it is now."""
    sections = [
        _color_form(model)
        for model_id, model in sorted(table.models.items())
        if _label(model, "ui_type", "") == "color_form"
    ]
    body = "\n".join(sections) or "<p>No model with a ui_type to show.</p>"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<style>{_STYLE}</style>
</head>
<body>
<h1>{escape(title)}</h1>
{body}
<script>{_SCRIPT}</script>
</body>
</html>
"""

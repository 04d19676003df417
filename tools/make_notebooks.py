"""Writes the walkthrough notebooks 00, 02, 03, 04 and 05 (outputs stripped).

The notebooks in notebooks/ are the source of truth once written; this script is
how they were first made and can re-make them after a structural change:
    .venv/bin/python tools/make_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

OUT = Path(__file__).resolve().parents[1] / "notebooks"


def notebook(cells: list[tuple[str, str, list[str] | None]]) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    for kind, text, tags in cells:
        cell = (
            nbf.v4.new_markdown_cell(text.strip())
            if kind == "md"
            else nbf.v4.new_code_cell(text.strip())
        )
        if tags:
            cell.metadata["tags"] = tags
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def md(text: str) -> tuple[str, str, None]:
    return ("md", text, None)


def code(text: str, tags: list[str] | None = None) -> tuple[str, str, list[str] | None]:
    return ("code", text, tags)


INFRA = notebook(
    [
        md("""
# 00 · The buses: a Matrix homeserver and an MQTT broker

The handover's "already done" items 1 and 2: the **management bus** is Matrix
(users `@drop` for the UI server and `@mbr` for the bridge, in a DM room) and the
**control bus** is MQTT. `dongyu infra up` runs both on this machine, bound to
127.0.0.1: a real Synapse and a real mosquitto, with one MQTT account per component
and an ACL. This notebook starts them, checks each claim, and stops them.
"""),
        code(
            """
# Parameters (papermill -p NAME VALUE)
state_dir = ""        # empty: a fresh temporary state folder
matrix_port = 0       # 0: a free port
mqtt_port = 0
keep_running = False  # leave the servers running at the end
output_dir = "out/00_infra"
""",
            ["parameters"],
        ),
        code("""
from pathlib import Path

from dongyu.e2e.probes import matrix_hop, mqtt_checks
from dongyu.e2e.setup import run_settings
from dongyu.infra import down, status, up

settings = run_settings(state_dir, matrix_port=matrix_port, mqtt_port=mqtt_port).infra
Path(output_dir).mkdir(parents=True, exist_ok=True)
"""),
        md("""
## 1. `up`: start, register, create the room

Idempotent: a second `up` finds the servers running and the users and room known.
"""),
        code("""
first = up(settings, progress=print)
second = up(settings)
info = first.info
assert second.started == (), "a second up starts nothing"
assert second.info.matrix.matrix_room_id == info.matrix.matrix_room_id, "same room"
print("room:", info.matrix.matrix_room_id)
"""),
        md("## 2. Both servers answer"),
        code("""
for server in status(settings).servers:
    print(f"{server.name:10} {server.mode:9} {'answering' if server.healthy else 'DOWN':10} {server.url}  PID {server.pid}")
assert all(s.healthy for s in status(settings).servers)
assert info.matrix.drop is not None and info.matrix.drop.matrix_dm_peer_user_id == info.matrix.mbr.user_id
assert info.matrix.mbr.matrix_dm_peer_user_id == info.matrix.drop.user_id
"""),
        md("""
## 3. A `dy.bus.v0` event from @drop reaches @mbr

The management bus carries custom events of type `dy.bus.v0`; each side listens only to
its peer in its room.
"""),
        code("""
hop = await matrix_hop(info)
print(f"event {hop.event_id} received by {info.matrix.mbr.user_id} in {hop.ms:.1f} ms")
assert hop.received
"""),
        md("""
## 4. MQTT: no anonymous access, and each account only where its ACL allows

The worker may publish its replies on `<base>/<model>/patch_out` and nothing else.
"""),
        code("""
checks = mqtt_checks(info)
print(checks)
assert checks.anonymous_refused
assert checks.worker_may_publish_patch_out
assert checks.worker_cannot_publish_elsewhere
"""),
        md("## 5. Stop (unless `keep_running`)"),
        code("""
if not keep_running:
    stopped = down(settings, progress=print)
    assert not any(s.healthy for s in status(settings).servers)
"""),
    ]
)

UI = notebook(
    [
        md("""
# 02 · The UI server

The handover's step 0.2 and 0.4-0.5: the UI server (Matrix user `@drop`) renders the
page from its ModelTable, answers `GET /snapshot`, and turns `POST /ui_event` into a
Matrix message through its program model `forward_ui_events`. It answers only once the
homeserver holds the event (an event id comes back). Bad requests get a 4xx with a reason.
"""),
        code(
            """
# Parameters (papermill -p NAME VALUE)
state_dir = ""
timeout_s = 60
output_dir = "out/02_ui_server"
""",
            ["parameters"],
        ),
        code("""
from pathlib import Path

from IPython.display import Image, display

from dongyu.e2e.probes import http_json
from dongyu.e2e.setup import run_settings
from dongyu.stack.local import LocalStack

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
run = run_settings(state_dir, timeout_s=timeout_s)
stack = LocalStack(run.infra, ports=run.ports, with_worker=False, progress=print, timeout_s=timeout_s)
stack.start()
"""),
        md("## 1. `GET /snapshot` has `.snapshot.models` (the handover's check)"),
        code("""
status, body = http_json("GET", f"{stack.ui_url}/snapshot")
models = body["snapshot"]["models"]
print(status, sorted(models, key=int))
assert status == 200 and "100" in models and "-1" in models
assert models["100"]["cells"]["0,0,0"]["labels"]["ui_type"]["v"] == "color_form"
"""),
        md("## 2. The page: a colour input labelled Color, a Submit button, the box"),
        code("""
from playwright.async_api import async_playwright

from dongyu.adapters.browser import launch_chromium

async with async_playwright() as p:
    browser = await launch_chromium(p)
    page = await browser.new_page()
    await page.goto(stack.ui_url)
    await page.screenshot(path=str(out / "page.png"))
    labels = await page.get_by_label("Color", exact=True).count()
    buttons = await page.get_by_role("button", name="Submit").count()
    await browser.close()
display(Image(filename=str(out / "page.png")))
assert labels == 1 and buttons == 1
"""),
        md("""
## 3. `POST /ui_event`: the event goes to Matrix

The answer carries the Matrix event id; the UI server's log shows the program model
forwarding it (`label_update`).
"""),
        code("""
event = {"source": "ui_renderer", "type": "label_add", "payload": {
    "action": "label_update", "meta": {"op_id": "nb02-1"},
    "target": {"model_id": 100, "p": 0, "r": 0, "c": 0, "k": "input_value"},
    "value": {"t": "str", "v": "#ff00ff"}}}
status, answer = http_json("POST", f"{stack.ui_url}/ui_event", event)
print(status, answer)
assert status == 200 and answer["event_id"].startswith("$")
log = (stack.log_dir / "ui-server.log").read_text()
print("\\n".join(line for line in log.splitlines() if "nb02-1" in line))
assert "program model forwards label_update to Matrix [op_id nb02-1]" in log
"""),
        md("## 4. Bad requests are refused with a reason, and change nothing"),
        code("""
before = http_json("GET", f"{stack.ui_url}/snapshot")[1]
for bad in ({"source": "ui_renderer"}, {**event, "payload": {**event["payload"], "action": "explode"}}, [1, 2]):
    status, answer = http_json("POST", f"{stack.ui_url}/ui_event", bad)
    print(status, answer)
    assert 400 <= status < 500 and answer["reason"]
assert http_json("GET", f"{stack.ui_url}/snapshot")[1] == before
"""),
        code("""
stack.stop(stop_infra=True)
"""),
    ]
)

MBR = notebook(
    [
        md("""
# 03 · The MBR bridge: Matrix <-> MQTT

The handover's step 0.3 and 0.5: the bridge (Matrix user `@mbr`) starts, connects to
Matrix and MQTT, and publishes each UI event it receives from `@drop` to
`UIPUT/ws/dam/pic/de/sw/<model>/<pin>`. Here a probe subscribes to the whole bus and
watches what the bridge publishes; no worker runs yet.
"""),
        code(
            """
# Parameters (papermill -p NAME VALUE)
state_dir = ""
timeout_s = 60
output_dir = "out/03_mbr_bus"
""",
            ["parameters"],
        ),
        code("""
from pathlib import Path

from dongyu.adapters.mqtt.client import MqttConnection, MqttEndpoint
from dongyu.e2e.probes import http_json
from dongyu.e2e.setup import run_settings
from dongyu.settings import read_infra_info
from dongyu.stack.local import LocalStack

Path(output_dir).mkdir(parents=True, exist_ok=True)
run = run_settings(state_dir, timeout_s=timeout_s)
stack = LocalStack(run.infra, ports=run.ports, with_worker=False, progress=print, timeout_s=timeout_s)
stack.start()
info = read_infra_info(stack.state_dir)
"""),
        md("## 1. The bridge's start-up log (the handover's expected lines)"),
        code("""
log = (stack.log_dir / "mbr.log").read_text()
expected = ["starting the MBR bridge", "connecting to Matrix", "Matrix client ready",
            "connecting to MQTT", "MQTT connected"]
for line in log.splitlines():
    if any(e in line for e in expected):
        print(line)
missing = [e for e in expected if e not in log]
assert missing == [], missing
"""),
        md("""
## 2. A UI event reaches MQTT

For the seed's model 2 the action becomes an mt.v0 record on `.../2/patch_in`; for the
colour form (model 100, which declares the pin `event_in`) the event goes whole to
`.../100/event_in`.
"""),
        code("""
import json

probe = MqttConnection(MqttEndpoint(info.mqtt.host, info.mqtt.port, info.mqtt.probe.username, info.mqtt.probe.password))
probe.connect()
probe.subscribe(f"{info.mqtt.topic_base}/#")
seen = {}
for model, op_id in ((2, "nb03-model2"), (100, "nb03-model100")):
    event = {"source": "ui_renderer", "type": "label_add", "payload": {
        "action": "label_update", "meta": {"op_id": op_id},
        "target": {"model_id": model, "p": 0, "r": 0, "c": 0, "k": "input_value"},
        "value": {"t": "str", "v": "#ff00ff"}}}
    assert http_json("POST", f"{stack.ui_url}/ui_event", event)[0] == 200
    message = probe.get(timeout_s)
    assert message is not None, f"nothing published for model {model}"
    seen[model] = (message.topic, json.loads(message.payload))
    print(message.topic, json.dumps(seen[model][1])[:160])
probe.close()
assert seen[2][0] == "UIPUT/ws/dam/pic/de/sw/2/patch_in"
assert seen[2][1]["records"] == [{"op": "add_label", "model_id": 2, "p": 0, "r": 0, "c": 0,
                                  "k": "input_value", "t": "str", "v": "#ff00ff"}]
assert seen[100][0] == "UIPUT/ws/dam/pic/de/sw/100/event_in" and seen[100][1]["records"] == []
assert [h["hop"] for h in seen[100][1]["hops"]] == ["ui_server.received", "mbr.received", "mbr.to_mqtt"]
"""),
        md("## 3. The bridge's metrics"),
        code("""
import urllib.request

text = urllib.request.urlopen(f"http://127.0.0.1:{stack.ports.mbr_health}/metrics").read().decode()
print(text)
assert "dongyu_mbr_to_mqtt_total 2" in text
stack.stop(stop_infra=True)
"""),
    ]
)

E2E = notebook(
    [
        md("""
# 05 · End to end: browser -> UI server -> Matrix -> MBR -> MQTT -> worker -> back

The handover's step 5 and its success criteria, run for real: a headless Chromium
types a colour and clicks Submit; the event travels over Matrix and MQTT to the worker
(a local process, or a pod of the local Kubernetes cluster with `worker_mode="k8s"`),
whose program model paints the colour and replies; the page repaints. The verdict is
written in the next cell's output when the run ends.
"""),
        code(
            """
# Parameters (papermill -p NAME VALUE)
worker_mode = "local"   # "local": the worker is a local process; "k8s": a pod of the local cluster
rounds = 3              # browser Submits (the first is traced hop by hop)
colour = "#ff00ff"      # the first colour typed
timeout_s = 60          # per step
state_dir = ""          # empty: a fresh temporary state folder
output_dir = "out/e2e"  # screenshot, timeline, results
""",
            ["parameters"],
        ),
        code("""
from IPython.display import Markdown, display

verdict_display = display(Markdown("**Verdict: running...** (a failed step leaves this line; papermill marks the failing cell)"), display_id=True)
"""),
        md("## Step 0: start the services (buses, UI server, MBR, worker)"),
        code("""
import json
from pathlib import Path

import scrapbook as sb
from IPython.display import Image

from dongyu.e2e.browser import rgb, submit_colour
from dongyu.e2e.probes import http_json
from dongyu.e2e.report import timeline_plot, verdict
from dongyu.e2e.setup import run_settings
from dongyu.e2e.trace import hop_rows, lines_of, markdown_table
from dongyu.stack.local import LocalStack

assert worker_mode in ("local", "k8s"), worker_mode
out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
run = run_settings(state_dir, timeout_s=timeout_s)
infra_settings, session, worker_name = run.infra, None, "e2e_worker_1"
if worker_mode == "k8s":
    # the local cluster, the buses (mosquitto also on docker0 for the pod), the worker image, the Deployment
    from dongyu.k8s import local as k8s_local
    session = k8s_local.start(run.infra, progress=print, stop_at_exit=True)
    infra_settings = session.infra
    worker_name = [p.name for p in session.kube.pods("default", "app=remote-worker") if p.ready][0]
stack = LocalStack(infra_settings, ports=run.ports, with_worker=(worker_mode == "local"), progress=print,
                   timeout_s=timeout_s, worker_id="e2e_worker_1")
stack.start()
print(f"worker: {worker_name} ({worker_mode})")
status, body = http_json("GET", f"{stack.ui_url}/snapshot")
assert status == 200 and "models" in body["snapshot"], "the UI server answers /snapshot"
"""),
        md("""
## Step 0.4: the browser types the colour and clicks Submit

The box is painted only by the worker's reply (the page never paints on its own).
"""),
        code("""
first = await submit_colour(stack.ui_url, colour, screenshot=out / "screenshot.png", timeout_s=timeout_s)
display(Image(filename=str(first.screenshot)))
print(f"op_id {first.op_id}: repainted {first.background} in {first.elapsed_ms:.0f} ms; status {first.status!r}")
assert first.background == rgb(colour), first.background
assert first.status == f"{worker_name}: {colour.upper()}", first.status
assert first.console == (), first.console
"""),
        md("""
## Step 0.5: follow the event through every component

One `op_id` is logged at every hop; the worker's reply is `<op_id>:reply`.
"""),
        code("""
logs = {name: c.log_file.read_text() for name, c in stack.components.items()}
if session is not None:
    logs["worker (pod)"] = session.logs()
followed = lines_of(first.op_id, logs)
for component, line in followed:
    print(f"[{component}] {line[:200]}")
worker_log = logs.get("worker") or logs.get("worker (pod)", "")
for expected in ("topic received", "written to PIN_IN", "processed successfully"):
    assert any(expected in line for c, line in followed if c.startswith("worker")), expected
assert any(c == "ui-server" for c, _ in followed) and any(c == "mbr" for c, _ in followed)
"""),
        md("## Per-hop latency and timeline of that event"),
        code("""
status, trace = http_json("GET", f"{stack.ui_url}/trace/{first.op_id}")
assert status == 200, trace
hops = [{"hop": "browser.click", "ts_us": first.click_us}, *trace["hops"],
        {"hop": "browser.repainted", "ts_us": first.repaint_us}]
rows = hop_rows(hops)
display(Markdown(markdown_table(rows)))
timeline_plot(rows, out / "timeline.png", title=f"{first.op_id} ({worker_mode} worker)")
display(Image(filename=str(out / "timeline.png")))
expected_hops = ["ui_server.received", "mbr.received", "mbr.to_mqtt", "worker.received",
                 "worker.reply", "mbr.to_matrix", "ui_server.applied"]
assert [h["hop"] for h in trace["hops"]] == expected_hops, trace["hops"]
"""),
        md("## More rounds"),
        code("""
colours = [colour] + [f"#{(60 * i) % 256:02x}{(200 - 40 * i) % 256:02x}{(90 * i) % 256:02x}" for i in range(1, rounds)]
results = [first] + [await submit_colour(stack.ui_url, c, timeout_s=timeout_s) for c in colours[1:]]
for r in results:
    print(f"{r.colour} -> {r.background} in {r.elapsed_ms:.0f} ms ({r.op_id})")
assert all(r.background == rgb(r.colour) for r in results)
"""),
        md("## Verdict, recorded results, shut-down"),
        code("""
import statistics

checks = {
    f"the page repainted with the worker's colour ({len(results)} of {rounds} rounds)":
        all(r.background == rgb(r.colour) for r in results) and len(results) == rounds,
    "the status shows the worker's name": first.status.startswith(f"{worker_name}: "),
    "every hop seen (UI server, Matrix, MBR, MQTT, worker, back)": [h["hop"] for h in trace["hops"]] == expected_hops,
    "no error in the browser console": all(r.console == () for r in results),
}
ok, text = verdict(checks)
elapsed = [round(r.elapsed_ms, 1) for r in results]
text += f"\\n\\nworker mode: **{worker_mode}**; Submit -> repaint: {', '.join(map(str, elapsed))} ms (median {statistics.median(elapsed)} ms)"
verdict_display.update(Markdown(text))
sb.glue("verdict", ok)
sb.glue("worker_mode", worker_mode)
sb.glue("op_id", first.op_id)
sb.glue("hops", [h["hop"] for h in trace["hops"]])
sb.glue("hop_rows", [{"hop": r.hop, "at_ms": r.at_ms, "leg_ms": r.leg_ms, "via": r.via} for r in rows])
sb.glue("background", first.background)
sb.glue("expected_background", rgb(colour))
sb.glue("status", first.status)
sb.glue("worker_name", worker_name)
sb.glue("round_trip_ms", elapsed)
(out / "results.json").write_text(json.dumps({"verdict": ok, "checks": checks, "round_trip_ms": elapsed}, indent=2))
stack.stop(stop_infra=session is None)
if session is not None:
    k8s_local.stop(session, progress=print)  # the Deployment, the buses, the cluster
assert ok, text
"""),
    ]
)

K8S = notebook(
    [
        md("""
# 04 · The worker in Kubernetes

The handover's steps 2-5 for the pod: the worker image (`Dockerfile.remote-worker`,
`dongyuapp-remote-worker:v1`), the manifests in `k8s/` (ConfigMap
`remote-worker-config`, a Secret for the MQTT credentials, Deployment `remote-worker`,
Service `remote-worker-svc`), a real single-node cluster on this machine, and the worker
pod answering on the control bus. `dongyu.k8s.local.start` does what
`scripts/k8s-cluster up`, `dongyu infra up --mqtt-extra-listen 172.17.0.1`,
`dongyu k8s build` and `dongyu k8s deploy` do by hand.
"""),
        code(
            """
# Parameters (papermill -p NAME VALUE)
state_dir = ""
timeout_s = 240
keep_running = False   # leave the cluster, the buses and the pod running at the end
output_dir = "out/04_k8s_worker"
""",
            ["parameters"],
        ),
        code("""
import json
import time
from pathlib import Path

from dongyu.adapters.mqtt.client import MqttConnection, MqttEndpoint
from dongyu.e2e.setup import run_settings
from dongyu.k8s import local as k8s_local

Path(output_dir).mkdir(parents=True, exist_ok=True)
run = run_settings(state_dir, timeout_s=timeout_s)
"""),
        md("## 1. Cluster, buses, image, Deployment"),
        code("""
session = k8s_local.start(run.infra, progress=print, stop_at_exit=not keep_running)
print(f"cluster: {'built and ' if session.cluster_result.built else ''}started in {session.cluster_result.seconds:.1f} s")
if session.image is not None:
    print(f"image {session.image.image}: {session.image.size_bytes / 1e6:.0f} MB, built in {session.image.seconds:.1f} s")
print(f"apply -> Ready: {session.apply_to_ready_s:.1f} s")
pods = session.kube.pods("default", "app=remote-worker")
for pod in pods:
    print(pod.name, pod.phase, "Ready" if pod.ready else "not ready", f"restarts {pod.restarts}")
assert [p.ready for p in pods] == [True]
"""),
        md("""
## 2. The pod handles the seed's message

As the bridge would, publish a translated UI event for model 2 on
`UIPUT/ws/dam/pic/de/sw/2/patch_in`; the pod's log shows the seed's expected lines.
"""),
        code("""
q = session.info.mqtt
bridge = MqttConnection(MqttEndpoint(q.host, q.port, q.mbr.username, q.mbr.password))
bridge.connect()
op_id = f"nb04-{int(time.time())}"
message = {"version": "mt.v0", "op_id": op_id, "action": "label_update",
           "records": [{"op": "add_label", "model_id": 2, "p": 0, "r": 0, "c": 0, "k": "input_value", "t": "str", "v": "#ff00ff"}]}
bridge.publish(f"{q.topic_base}/2/patch_in", json.dumps(message).encode())
bridge.close()
deadline = time.monotonic() + 30
while time.monotonic() < deadline and f"processed successfully [op_id {op_id}]" not in session.logs():
    time.sleep(0.5)
lines = [line for line in session.logs().splitlines() if op_id in line]
print("\\n".join(lines))
for expected in ("topic received", "written to PIN_IN mqtt_in of model 2", "processed successfully"):
    assert any(expected in line for line in lines), expected
"""),
        md("## 3. Delete the pod: the Deployment replaces it"),
        code("""
old = pods[0].name
session.kube.delete_pod(old, "default")
deadline = time.monotonic() + timeout_s
while time.monotonic() < deadline:
    fresh = [p for p in session.kube.pods("default", "app=remote-worker") if p.ready and not p.deleting and p.name != old]
    if fresh:
        break
    time.sleep(0.5)
print(f"{old} deleted; {fresh[0].name} Ready")
assert fresh
"""),
        code("""
if not keep_running:
    k8s_local.stop(session, progress=print)
"""),
    ]
)


for name, nb in (
    ("00_infra", INFRA),
    ("04_k8s_worker", K8S),
    ("02_ui_server", UI),
    ("03_mbr_bus", MBR),
    ("05_e2e", E2E),
):
    nbf.write(nb, OUT / f"{name}.ipynb")
    print("wrote", OUT / f"{name}.ipynb")

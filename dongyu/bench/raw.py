"""The raw buses, on the chain's own servers: one Matrix hop and one MQTT hop.

- **Matrix**: the UI server's user (@drop) sends an event with the same client
  code the chain uses (:class:`~dongyu.adapters.matrix.link.MatrixLink`, nio)
  into the chain's room; the bridge's user (@mbr) receives it through its own
  long-polling sync. The event type is ``dy.bench.v0``, which the running chain
  does not listen to. Latency: from the send call to the receiver's sync
  returning it. Then the same number of events are sent back to back, one at a
  time (each waits for the homeserver's answer), which gives the raw
  one-at-a-time event rate.
- **MQTT**: publish at QoS 1 (waiting for the PUBACK, as the chain does) with
  :class:`~dongyu.adapters.mqtt.link.MqttLink` (aiomqtt) on the probe account's
  topic; a second connection subscribed to it receives. Latency: from the
  publish call to the subscriber's callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from dongyu.adapters.matrix.link import MatrixLink
from dongyu.adapters.mqtt.client import MqttEndpoint
from dongyu.adapters.mqtt.link import MqttLink
from dongyu.bench.stats import summary
from dongyu.errors import DongyuError
from dongyu.settings import InfraInfo, MatrixAccount

log = logging.getLogger("dongyu.bench.raw")

BENCH_EVENT_TYPE = "dy.bench.v0"
PROBE_TOPIC = "dongyu/probe/bench"
Progress = Callable[[str], None]


class BenchError(DongyuError):
    code = "bench_error"


def _link(info: InfraInfo, account: MatrixAccount | None, peer: str) -> MatrixLink:
    room = info.matrix.matrix_room_id
    if account is None or room is None:
        raise BenchError("infra.json lacks the Matrix users or room: run 'dongyu infra up'")
    return MatrixLink(
        info.matrix.homeserver_url,
        user_id=account.user_id,
        access_token=account.access_token,
        password=account.password,
        device_id=account.device_id,
        room_id=room,
        peer_user_id=peer,
        tls_verify=info.matrix.tls_verify,
        sync_token_file=None,
        event_type=BENCH_EVENT_TYPE,
    )


async def matrix_hop(
    info: InfraInfo, samples: int, *, gap_s: float = 0.02, say: Progress = print
) -> dict[str, Any]:
    """One Matrix event from @drop to @mbr's sync, ``samples`` times; then as many back to
    back (the one-at-a-time rate)."""
    drop = info.matrix.drop
    if drop is None:
        raise BenchError("infra.json has no @drop account")
    sender = _link(info, drop, info.matrix.mbr.user_id)
    receiver = _link(info, info.matrix.mbr, drop.user_id)
    arrived: dict[str, float] = {}
    waiting: dict[str, asyncio.Future[float]] = {}

    async def receive() -> None:
        async for batch in receiver.events():
            now = time.perf_counter()
            for event in batch:
                key = str(event.content.get("n"))
                arrived[key] = now
                future = waiting.pop(key, None)
                if future is not None and not future.done():
                    future.set_result(now)

    await sender.login()
    await receiver.login()
    task = asyncio.create_task(receive())
    try:
        await asyncio.wait_for(receiver.synced.wait(), 30)
        await asyncio.sleep(0.2)  # the receiver is in its long-poll
        run = uuid.uuid4().hex[:8]
        hop_ms: list[float] = []
        send_ms: list[float] = []
        for i in range(samples):
            key = f"{run}-{i}"
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[key] = future
            t0 = time.perf_counter()
            await sender.send({"n": key, "ts_ms": time.time_ns() // 1_000_000})
            t1 = time.perf_counter()
            t2 = await asyncio.wait_for(future, 30)
            send_ms.append((t1 - t0) * 1000)
            hop_ms.append((t2 - t0) * 1000)
            if (i + 1) % 10 == 0:
                say(f"  Matrix hop {i + 1}/{samples}: median so far {_median(hop_ms):.1f} ms")
            await asyncio.sleep(gap_s)
        # back to back: the rate of one event at a time (each waits for its answer)
        keys = [f"{run}-seq-{i}" for i in range(samples)]
        t0 = time.perf_counter()
        for key in keys:
            await sender.send({"n": key})
        elapsed = time.perf_counter() - t0
        deadline = time.monotonic() + 30
        while not all(k in arrived for k in keys) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        delivered = sum(k in arrived for k in keys)
        drained = max((arrived[k] for k in keys if k in arrived), default=t0) - t0
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sender.close()
        await receiver.close()
    return {
        "hop_ms": summary(hop_ms),
        "send_ms": summary(send_ms),
        "samples_ms": [round(v, 3) for v in hop_ms],
        "sequential": {
            "events": samples,
            "delivered": delivered,
            "send_s": round(elapsed, 3),
            "drain_s": round(drained, 3),
            "events_per_s": round(samples / elapsed, 1),
        },
    }


async def mqtt_hop(
    info: InfraInfo, samples: int, *, gap_s: float = 0.001, say: Progress = print
) -> dict[str, Any]:
    """One QoS 1 MQTT message from one connection to another, ``samples`` times."""
    probe = info.mqtt.probe
    if probe is None:
        raise BenchError("infra.json has no MQTT probe account")
    endpoint = MqttEndpoint(
        info.mqtt.host, info.mqtt.port, probe.username, probe.password, info.mqtt.tls
    )
    run = uuid.uuid4().hex[:8]
    topic = f"{PROBE_TOPIC}/{run}"
    waiting: dict[bytes, asyncio.Future[float]] = {}

    async def on_message(_topic: str, payload: bytes) -> None:
        now = time.perf_counter()
        future = waiting.pop(payload, None)
        if future is not None and not future.done():
            future.set_result(now)

    subscriber = MqttLink(
        endpoint,
        client_id=f"dongyu-bench-sub-{run}",
        subscriptions=[topic],
        on_message=on_message,
        clean_session=True,
    )
    publisher = MqttLink(endpoint, client_id=f"dongyu-bench-pub-{run}", clean_session=True)
    tasks = [asyncio.create_task(subscriber.run()), asyncio.create_task(publisher.run())]
    hop_ms: list[float] = []
    publish_ms: list[float] = []
    try:
        await subscriber.wait_connected(10)
        await publisher.wait_connected(10)
        await asyncio.sleep(0.1)
        for i in range(samples):
            payload = f"{run}-{i}".encode()
            future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
            waiting[payload] = future
            t0 = time.perf_counter()
            await publisher.publish(topic, payload)
            t1 = time.perf_counter()
            t2 = await asyncio.wait_for(future, 10)
            publish_ms.append((t1 - t0) * 1000)
            hop_ms.append((t2 - t0) * 1000)
            if (i + 1) % 100 == 0:
                say(f"  MQTT hop {i + 1}/{samples}: median so far {_median(hop_ms):.2f} ms")
            await asyncio.sleep(gap_s)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return {
        "hop_ms": summary(hop_ms),
        "publish_ms": summary(publish_ms),
        "samples_ms": [round(v, 4) for v in hop_ms],
    }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]

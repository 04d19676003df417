"""The amqtt fallback broker's process: ``python -m dongyu.infra.amqtt_runner CONFIG.json``.

Kept apart from :mod:`dongyu.infra.amqtt_fallback` (which ``dongyu.infra``
imports) so that ``-m`` runs a module that is not already imported. The
config is written by :func:`dongyu.infra.amqtt_fallback.write_files`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dongyu.infra.amqtt_fallback import broker_config
from dongyu.infra.state import write_private

log = logging.getLogger("dongyu.infra.amqtt_runner")


async def _serve(config: Mapping[str, Any]) -> None:
    from amqtt.broker import Broker
    from pwdlib.hashers.argon2 import Argon2Hasher

    hasher = Argon2Hasher()
    write_private(
        Path(config["password_file"]),
        "".join(f"{u}:{hasher.hash(pw)}\n" for u, pw in config["accounts"].items()),
    )
    broker = Broker(broker_config(config))
    await broker.start()
    log.info("amqtt broker listening on %s (fallback for mosquitto)", config["bind"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await broker.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dongyu.infra.amqtt_runner CONFIG.json", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    asyncio.run(_serve(config))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

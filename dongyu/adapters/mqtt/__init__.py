"""The MQTT adapter (control bus): the only package that imports paho-mqtt."""

from dongyu.adapters.mqtt.client import (
    ConnectOutcome,
    Message,
    MqttConnection,
    MqttEndpoint,
    MqttError,
    try_connect,
)

__all__ = [
    "ConnectOutcome",
    "Message",
    "MqttConnection",
    "MqttEndpoint",
    "MqttError",
    "try_connect",
]

"""The remote worker: MQTT messages into pins, program functions, replies (spec 6, 9)."""

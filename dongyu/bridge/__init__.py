"""The MBR's pure logic: translating between the management bus (Matrix) and the
control bus (MQTT), spec 7.3 and 7.4. The service that runs it is
:mod:`dongyu.services.mbr`."""

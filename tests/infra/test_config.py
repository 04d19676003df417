"""Pure logic of dongyu.infra and dongyu.settings: config text, ACL, hashes, settings (no servers)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from dongyu.adapters.matrix import MatrixClientError, check_content
from dongyu.errors import SettingsError
from dongyu.infra import amqtt_fallback, mosquitto, synapse
from dongyu.infra.acl import acl_rules, amqtt_acl, mosquitto_acl_text
from dongyu.settings import (
    InfraInfo,
    MatrixAccount,
    MatrixInfo,
    MqttAccount,
    MqttInfo,
    infra_settings,
    load_environment,
    matrix_tls_verify,
    parse_env_file,
    worker_settings,
)

BASE = "UIPUT/ws/dam/pic/de/sw"
KEYS = synapse.SynapseSecrets("reg-secret", "macaroon", "form")


# --------------------------------------------------------------------------- Synapse


def test_synapse_listens_on_loopback_only_without_federation(tmp_path: Path) -> None:
    cfg = synapse.homeserver_config(
        synapse.SynapseFiles(tmp_path), port=18008, server_name="localhost", keys=KEYS
    )
    (listener,) = cfg["listeners"]
    assert listener["bind_addresses"] == ["127.0.0.1"] and listener["port"] == 18008
    assert listener["tls"] is False
    assert [r["names"] for r in listener["resources"]] == [["client"]]  # no "federation"
    assert cfg["federation_domain_whitelist"] == []
    assert cfg["trusted_key_servers"] == []
    assert cfg["enable_registration"] is False
    assert cfg["url_preview_enabled"] is False and cfg["presence"] == {"enabled": False}
    assert cfg["report_stats"] is False
    assert cfg["database"]["name"] == "sqlite3"
    assert cfg["registration_shared_secret"] == "reg-secret"
    assert cfg["public_baseurl"] == "http://127.0.0.1:18008/"


def test_synapse_rate_limits_are_raised_for_a_testbed(tmp_path: Path) -> None:
    cfg = synapse.homeserver_config(
        synapse.SynapseFiles(tmp_path), port=1, server_name="localhost", keys=KEYS
    )
    assert cfg["rc_message"]["per_second"] >= 100  # the default is 0.2/s
    assert cfg["rc_login"]["account"]["burst_count"] >= 100
    assert cfg["rc_joins"]["local"]["per_second"] >= 100
    assert cfg["rc_invites"]["per_user"]["per_second"] >= 100
    assert cfg["rc_room_creation"]["per_second"] >= 100


def test_synapse_config_is_deterministic_and_written_as_yaml_compatible_json(
    tmp_path: Path,
) -> None:
    files = synapse.write_files(tmp_path, port=18008, server_name="localhost", keys=KEYS)
    text = files.config.read_text()
    body = json.loads(text.split("\n", 1)[1])  # after the comment line
    assert body == synapse.homeserver_config(files, port=18008, server_name="localhost", keys=KEYS)
    assert files.config.stat().st_mode & 0o077 == 0  # it holds secrets
    key = files.signing_key.read_text().split()
    assert key[0] == "ed25519" and key[1].startswith("a_")
    assert len(base64.b64decode(key[2] + "=")) == 32
    # the signing key survives a rewrite (it is the server's identity)
    before = files.signing_key.read_text()
    synapse.write_files(tmp_path, port=18009, server_name="localhost", keys=KEYS)
    assert files.signing_key.read_text() == before


def test_synapse_log_goes_to_one_file(tmp_path: Path) -> None:
    files = synapse.SynapseFiles(tmp_path)
    cfg = synapse.log_config(files)
    assert cfg["handlers"]["file"]["filename"] == str(files.log)
    assert cfg["root"]["handlers"] == ["file"]


# --------------------------------------------------------------------------- mosquitto and amqtt


def test_mosquitto_config(tmp_path: Path) -> None:
    files = mosquitto.MosquittoFiles(tmp_path)
    text = mosquitto.config_text(files, 11883, "mosquitto")
    lines = text.splitlines()
    assert "listener 11883 127.0.0.1" in lines
    assert "allow_anonymous false" in lines
    assert "persistence true" in lines
    assert f"password_file {files.passwd}" in lines and f"acl_file {files.acl}" in lines
    assert not [line for line in lines if line.startswith("listener") and "127.0.0.1" not in line]


def test_mosquitto_password_hash_is_pbkdf2_sha512() -> None:
    salt = b"0123456789ab"
    line = mosquitto.password_hash("s3cret", salt=salt)
    _, kind, rounds, salt_b64, hash_b64 = line.split("$")
    assert (kind, rounds) == ("7", "101")
    assert base64.b64decode(salt_b64) == salt
    assert base64.b64decode(hash_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)
    assert mosquitto.password_hash("s3cret") != mosquitto.password_hash("s3cret")  # salted
    text = mosquitto.password_file_text({"mbr": "a", "worker": "b"})
    assert [line.split(":")[0] for line in text.splitlines()] == ["mbr", "worker"]


def test_acl_gives_each_component_only_its_topics() -> None:
    rules = acl_rules(BASE)
    assert set(rules) == {"mbr", "worker", "ui", "probe"}
    writes = {u: {r.pattern for r in rs if "write" in r.access} for u, rs in rules.items()}
    reads = {u: {r.pattern for r in rs if "read" in r.access} for u, rs in rules.items()}
    assert writes["worker"] == {f"{BASE}/+/patch_out"}
    assert reads["worker"] == {f"{BASE}/#"}
    assert writes["mbr"] == {f"{BASE}/#"} and reads["mbr"] == {f"{BASE}/+/patch_out"}
    assert writes["ui"] == set()
    text = mosquitto_acl_text(BASE)
    assert "user worker\ntopic read UIPUT/ws/dam/pic/de/sw/#\n" in text
    assert "topic write UIPUT/ws/dam/pic/de/sw/+/patch_out" in text
    assert "pattern" not in text  # no rules shared by every user


def test_amqtt_gets_the_same_acl_and_binds_loopback(tmp_path: Path) -> None:
    publish, subscribe = amqtt_acl(BASE)
    assert publish["worker"] == [f"{BASE}/+/patch_out"] and publish["ui"] == []
    assert subscribe["mbr"] == [f"{BASE}/+/patch_out"]
    files = amqtt_fallback.AmqttFiles(tmp_path)
    runner = amqtt_fallback.runner_config(files, port=11883, accounts={"mbr": "x"}, topic_base=BASE)
    broker = amqtt_fallback.broker_config(runner)
    assert broker["listeners"] == {"default": {"type": "tcp", "bind": "127.0.0.1:11883"}}
    plugins = broker["plugins"]
    assert "amqtt.plugins.authentication.AnonymousAuthPlugin" not in plugins
    assert plugins["amqtt.plugins.authentication.FileAuthPlugin"]["password_file"] == str(
        files.passwd
    )
    acl = plugins["amqtt.plugins.topic_checking.TopicAccessControlListPlugin"]
    assert acl["publish_acl"] == publish and acl["acl"] == subscribe


# --------------------------------------------------------------------------- settings


def test_env_file_parsing() -> None:
    text = """
# a comment
export MATRIX_HOMESERVER_URL=https://matrix.example:8448
MATRIX_MBR_USER="@mbr:example"
MATRIX_MBR_PASSWORD='p a s s'
MQTT_BROKER_PORT=1884  # trailing comment
EMPTY=
"""
    env = parse_env_file(text)
    assert env == {
        "MATRIX_HOMESERVER_URL": "https://matrix.example:8448",
        "MATRIX_MBR_USER": "@mbr:example",
        "MATRIX_MBR_PASSWORD": "p a s s",
        "MQTT_BROKER_PORT": "1884",
        "EMPTY": "",
    }
    with pytest.raises(SettingsError, match="line 2"):
        parse_env_file("A=1\nnot a setting\n")


def test_environment_wins_over_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MQTT_BROKER_HOST=from-file\nMQTT_BROKER_PORT=1999\n")
    env = load_environment({"MQTT_BROKER_HOST": "from-env"}, env_file)
    assert env["MQTT_BROKER_HOST"] == "from-env" and env["MQTT_BROKER_PORT"] == "1999"
    assert load_environment({}, tmp_path / "missing") == {}


def test_embedded_is_the_default(tmp_path: Path) -> None:
    s = infra_settings({}, state_dir=tmp_path)
    assert s.matrix_external is None and s.mqtt_external is None
    assert s.state_dir == tmp_path and s.broker == "auto" and s.topic_base == BASE
    assert infra_settings({"DONGYU_STATE_DIR": str(tmp_path / "x")}).state_dir == tmp_path / "x"
    assert infra_settings({"DY_MATRIX_PORT": "18008"}, matrix_port=None).matrix_port == 18008
    assert infra_settings({"DY_MATRIX_PORT": "18008"}, matrix_port=19000).matrix_port == 19000


def test_external_mode_from_the_seeds_variables(tmp_path: Path) -> None:
    s = infra_settings(
        {
            "MATRIX_HOMESERVER_URL": "https://matrix.example:8448/",
            "MATRIX_MBR_USER": "@mbr:example",
            "MATRIX_MBR_ACCESS_TOKEN": "tok",
            "DY_MATRIX_ROOM_ID": "!room:example",
            "MQTT_BROKER_HOST": "broker.example",
            "MQTT_BROKER_PORT": "8883",
            "NODE_TLS_REJECT_UNAUTHORIZED": "0",
        },
        state_dir=tmp_path,
    )
    assert s.matrix_external is not None and s.mqtt_external is not None
    assert s.matrix_external.homeserver_url == "https://matrix.example:8448"
    assert s.matrix_external.mbr_access_token == "tok" and s.matrix_external.mbr_password is None
    assert s.matrix_external.room_id == "!room:example"
    assert s.matrix_external.tls_verify is False
    assert (s.mqtt_external.host, s.mqtt_external.port) == ("broker.example", 8883)


def test_external_mode_needs_mbr_credentials() -> None:
    with pytest.raises(SettingsError, match="MATRIX_MBR_USER"):
        infra_settings({"MATRIX_HOMESERVER_URL": "http://hs"})
    with pytest.raises(SettingsError, match="MATRIX_MBR_PASSWORD"):
        infra_settings({"MATRIX_HOMESERVER_URL": "http://hs", "MATRIX_MBR_USER": "@mbr:hs"})
    with pytest.raises(SettingsError, match="MQTT_BROKER_PORT"):
        infra_settings({"MQTT_BROKER_HOST": "h", "MQTT_BROKER_PORT": "70000"})


def test_tls_verification_switch() -> None:
    assert matrix_tls_verify({}) is True
    assert matrix_tls_verify({"NODE_TLS_REJECT_UNAUTHORIZED": "0"}) is False
    assert matrix_tls_verify({"NODE_TLS_REJECT_UNAUTHORIZED": "1"}) is True
    assert matrix_tls_verify({"DY_MATRIX_TLS_VERIFY": "false"}) is False
    assert (
        matrix_tls_verify({"NODE_TLS_REJECT_UNAUTHORIZED": "0", "DY_MATRIX_TLS_VERIFY": "1"})
        is True
    )
    with pytest.raises(SettingsError):
        matrix_tls_verify({"DY_MATRIX_TLS_VERIFY": "maybe"})


def _info() -> InfraInfo:
    return InfraInfo(
        matrix=MatrixInfo(
            mode="embedded",
            homeserver_url="http://127.0.0.1:8008",
            server_name="localhost",
            tls_verify=True,
            matrix_room_id="!r:localhost",
            mbr=MatrixAccount("@mbr:localhost", "pw", "tok", "DEV", "@drop:localhost"),
            drop=MatrixAccount("@drop:localhost", "pw2", "tok2", "DEV2", "@mbr:localhost"),
        ),
        mqtt=MqttInfo(
            mode="mosquitto",
            host="127.0.0.1",
            port=1883,
            tls=False,
            topic_base=BASE,
            mbr=MqttAccount("mbr", "m"),
            worker=MqttAccount("worker", "w"),
            ui=MqttAccount("ui", "u"),
            probe=MqttAccount("probe", "p"),
        ),
    )


def test_infra_json_round_trip() -> None:
    info = _info()
    assert InfraInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    with pytest.raises(SettingsError):
        InfraInfo.from_json({"version": 1, "matrix": {}})
    with pytest.raises(SettingsError, match="version"):
        InfraInfo.from_json({**info.to_json(), "version": 99})


def test_worker_settings_environment_first_then_infra_json() -> None:
    from_file = worker_settings({"WORKER_ID": "w1"}, _info())
    assert (from_file.mqtt_host, from_file.mqtt_port) == ("127.0.0.1", 1883)
    assert (from_file.mqtt_user, from_file.mqtt_pass) == ("worker", "w")
    assert from_file.model_id == 2 and from_file.worker_id == "w1"
    from_env = worker_settings(
        {"MQTT_HOST": "h", "MQTT_PORT": "1", "MQTT_USER": "u", "WORKER_MODEL_ID": "100"}, _info()
    )
    assert (from_env.mqtt_host, from_env.mqtt_port, from_env.mqtt_user) == ("h", 1, "u")
    assert from_env.model_id == 100
    with pytest.raises(SettingsError, match="MQTT_HOST"):
        worker_settings({})


# --------------------------------------------------------------------------- event content


def test_bus_event_content_must_be_canonical_json() -> None:
    check_content({"version": "v0", "timestamp": 1_700_000_000_000, "data": [1, "a", None, True]})
    with pytest.raises(MatrixClientError, match=r"content\.data\.x: floats are refused"):
        check_content({"data": {"x": 0.5}})
    with pytest.raises(MatrixClientError, match="outside"):
        check_content({"n": 2**60})

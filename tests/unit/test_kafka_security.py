"""kafka.security: validation at load, the settings each client library gets, the JAAS string, and
that the SASL password shows up nowhere but in the clients' settings."""
from __future__ import annotations

import pytest
import yaml

from settings.config import ConfigError, load_config
from settings.kafka_clients import (KEY_PASSWORD_ENV, MASK, SASL_PASSWORD_ENV, KafkaAccessError, client_config,
                               flink_properties, jaas_quote, password_free, redacted)
from jobs import milestones, sql

SECRET = 'pa"ss\\wo\'rd'


def config(tmp_path, security: dict, **stack):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap": "b:9093", "security": security},
                                    **({"stack": stack} if stack else {})}))
    return load_config(path, env={})


@pytest.fixture
def pem(tmp_path):
    files = {}
    for name in ("ca.pem", "client.pem"):
        (tmp_path / name).write_text("-----BEGIN CERTIFICATE-----\n")
        files[name] = str(tmp_path / name)
    return files


def test_plaintext_is_the_default_and_adds_no_security_settings(tmp_path):
    cfg = config(tmp_path, {})
    assert client_config(cfg.kafka, environ={}) == {"bootstrap.servers": "b:9093", "log_level": 5}
    assert flink_properties(cfg.kafka, environ={}) == {"properties.bootstrap.servers": "b:9093"}


def test_ssl_maps_to_both_clients(tmp_path, pem):
    cfg = config(tmp_path, {"protocol": "SSL", "ssl_ca_file": pem["ca.pem"], "ssl_cert_file": pem["client.pem"]})
    env = {KEY_PASSWORD_ENV: "kp"}
    assert client_config(cfg.kafka, {"group.id": "g"}, environ=env) == {
        "bootstrap.servers": "b:9093", "log_level": 5, "security.protocol": "SSL", "ssl.ca.location": pem["ca.pem"],
        "ssl.certificate.location": pem["client.pem"], "ssl.key.location": pem["client.pem"],
        "ssl.key.password": "kp", "ssl.endpoint.identification.algorithm": "https", "group.id": "g"}
    assert flink_properties(cfg.kafka, environ=env) == {
        "properties.bootstrap.servers": "b:9093", "properties.security.protocol": "SSL",
        "properties.ssl.truststore.type": "PEM", "properties.ssl.truststore.location": pem["ca.pem"],
        "properties.ssl.keystore.type": "PEM", "properties.ssl.keystore.location": pem["client.pem"],
        "properties.ssl.key.password": "kp", "properties.ssl.endpoint.identification.algorithm": "https"}


def test_hostname_check_off_is_spelled_per_library(tmp_path, pem):
    cfg = config(tmp_path, {"protocol": "SSL", "ssl_ca_file": pem["ca.pem"], "ssl_check_hostname": False})
    assert client_config(cfg.kafka, environ={})["ssl.endpoint.identification.algorithm"] == "none"
    assert flink_properties(cfg.kafka, environ={})["properties.ssl.endpoint.identification.algorithm"] == ""


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism,module", [
    ("SCRAM-SHA-512", "org.apache.kafka.common.security.scram.ScramLoginModule"),
    ("SCRAM-SHA-256", "org.apache.kafka.common.security.scram.ScramLoginModule"),
    ("PLAIN", "org.apache.kafka.common.security.plain.PlainLoginModule")])
def test_sasl_maps_to_both_clients(tmp_path, protocol, mechanism, module):
    cfg = config(tmp_path, {"protocol": protocol, "sasl_mechanism": mechanism, "sasl_username": 'u"1'})
    env = {SASL_PASSWORD_ENV: SECRET}
    conf = client_config(cfg.kafka, environ=env)
    assert {k: conf[k] for k in ("security.protocol", "sasl.mechanisms", "sasl.username", "sasl.password")} == {
        "security.protocol": protocol, "sasl.mechanisms": mechanism, "sasl.username": 'u"1', "sasl.password": SECRET}
    assert ("ssl.endpoint.identification.algorithm" in conf) == (protocol == "SASL_SSL")
    props = flink_properties(cfg.kafka, environ=env)
    assert props["properties.security.protocol"] == protocol and props["properties.sasl.mechanism"] == mechanism
    assert props["properties.sasl.jaas.config"] == (
        f'{module} required username="u\\"1" password="pa\\"ss\\\\wo\'rd";')


def test_jaas_quote_escapes_backslash_then_quote():
    assert jaas_quote('a\\"b') == '"a\\\\\\"b"'  # a \ " b  ->  "a \\ \" b"


def test_ddl_carries_the_properties_as_sql_literals_and_redaction_masks_the_password(tmp_path):
    cfg = config(tmp_path, {"protocol": "SASL_PLAINTEXT", "sasl_username": "fyp"})
    import os
    os.environ[SASL_PASSWORD_ENV] = SECRET  # the DDL builders read the environment as the job does
    try:
        ddls = [sql.kafka_source_ddl(cfg, "t", "x", "g"), sql.side_output_sink_ddl(cfg, "s", "x"),
                sql.keyed_update_sink_ddl(cfg, "k", "x"), milestones.crossing_sink_ddl(cfg, "c")]
    finally:
        del os.environ[SASL_PASSWORD_ENV]
    quoted_secret = SECRET.replace("\\", "\\\\").replace('"', '\\"').replace("'", "''")
    for ddl in ddls:
        assert "'properties.security.protocol' = 'SASL_PLAINTEXT'" in ddl
        assert f"password=\"{quoted_secret}\";'" in ddl  # the JAAS string, then SQL-quoted
        shown = redacted(ddl)
        assert SECRET not in shown and quoted_secret not in shown and f'password="{MASK}"' in shown


def test_redacted_masks_client_settings(tmp_path):
    cfg = config(tmp_path, {"protocol": "SASL_PLAINTEXT", "sasl_username": "fyp"})
    env = {SASL_PASSWORD_ENV: SECRET}
    for conf in (client_config(cfg.kafka, environ=env), flink_properties(cfg.kafka, environ=env)):
        assert SECRET not in repr(redacted(conf))
    assert password_free(f"error with {SECRET} in it", env) == f"error with {MASK} in it"


def test_the_password_is_never_in_the_config_or_its_errors(tmp_path):
    cfg = config(tmp_path, {"protocol": "SASL_SSL", "sasl_username": "fyp"})
    assert "password" not in repr(cfg.kafka.security)  # no field for it: it lives in the environment
    with pytest.raises(KafkaAccessError, match=SASL_PASSWORD_ENV) as e:
        client_config(cfg.kafka, environ={})
    assert "fyp" in str(e.value)
    with pytest.raises(KafkaAccessError, match=SASL_PASSWORD_ENV):
        flink_properties(cfg.kafka, environ={SASL_PASSWORD_ENV: ""})


@pytest.mark.parametrize("security,message", [
    ({"protocol": "TLS"}, "'kafka.security.protocol': input should be 'PLAINTEXT', 'SSL'"),
    ({"protocol": "SASL_SSL"}, "needs kafka.security.sasl_username"),
    ({"protocol": "SASL_PLAINTEXT", "sasl_username": "u", "sasl_mechanism": "GSSAPI"},
     "'kafka.security.sasl_mechanism': input should be 'SCRAM-SHA-512'"),
    ({"protocol": "SSL", "ssl_ca_file": "/no/such/ca.pem"}, "kafka.security.ssl_ca_file: no such file"),
    ({"protocol": "PLAINTEXT", "ssl_ca_file": "/etc/hostname"}, "TLS files need SSL or SASL_SSL"),
    ({"protocol": "SSL", "ssl_key_file": "/etc/hostname"}, "ssl_key_file needs kafka.security.ssl_cert_file"),
    ({"protocol": "SSL", "ssl_cert_file": "/etc/hostname", "ssl_key_file": "/etc/hosts"}, "one PEM file"),
    ({"protcol": "SSL"}, "unknown key 'kafka.security.protcol'"),
    ({"ssl_check_hostname": "yes"}, "'kafka.security.ssl_check_hostname': input should be a valid boolean"),
])
def test_invalid_security_fails_at_load_naming_key_and_file(tmp_path, security, message):
    with pytest.raises(ConfigError, match=message) as e:
        config(tmp_path, security)
    assert str(tmp_path / "c.yaml") in str(e.value)


def test_broker_tls_stack_settings_are_checked(tmp_path, pem):
    with pytest.raises(ConfigError, match="go together"):
        config(tmp_path, {}, broker_tls_cert=pem["client.pem"])
    with pytest.raises(ConfigError, match="no ','"):
        config(tmp_path, {}, broker_tls_cert="/no/file", broker_tls_key=pem["client.pem"])
    with pytest.raises(ConfigError, match="broker_internal_port"):
        config(tmp_path, {}, broker_tls_cert=pem["client.pem"], broker_tls_key=pem["client.pem"],
               broker_internal_port=19092)


def test_every_kafka_sink_delivers_at_least_once_in_order_without_idempotence(tmp_path):
    """The jobs' sinks send as the Python producers do (settings.kafka_clients.PRODUCER_DELIVERY):
    the Java kafka-clients' default, idempotence on, can lose a batch across a tansu crash."""
    cfg = config(tmp_path, {})
    for ddl in (sql.side_output_sink_ddl(cfg, "s", "x"), sql.keyed_update_sink_ddl(cfg, "k", "x"),
                milestones.crossing_sink_ddl(cfg, "c")):
        for line in ("'properties.acks' = 'all'", "'properties.enable.idempotence' = 'false'",
                     "'properties.max.in.flight.requests.per.connection' = '1'",
                     "'sink.delivery-guarantee' = 'at-least-once'"):
            assert line in ddl, (line, ddl)

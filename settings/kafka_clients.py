"""Connection settings of every Kafka client, from `kafka.security` (settings/config.py). WHY one
place: the Python clients (confluent-kafka / librdkafka) and the Flink Kafka connector (the Java
kafka-clients) spell the same settings differently; both are derived here from one config, so a
secured broker is reached the same way by the jobs, the writer, the notifier, the alerter and
the tools.

Secrets: the SASL password only from FYP_KAFKA_SASL_PASSWORD, a client key's password only from
FYP_KAFKA_SSL_KEY_PASSWORD. They are in the dicts returned here (the clients need them) and
nowhere else: never in the config object, never printed; `redacted` masks them for any message.
"""
from __future__ import annotations

import os
import re

from settings.infrastructure import KafkaConfig

SASL_PASSWORD_ENV = "FYP_KAFKA_SASL_PASSWORD"
KEY_PASSWORD_ENV = "FYP_KAFKA_SSL_KEY_PASSWORD"
MASK = "******"

# the JAAS login module of each SASL mechanism in the Java kafka-clients
_LOGIN_MODULES = {
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
}
_SECRET_KEYS = ("sasl.password", "ssl.key.password", "properties.ssl.key.password")
_JAAS_PASSWORD = re.compile(r'(password=")((?:[^"\\]|\\.)*)(")')


# How every producer of the pipeline delivers (its own topics: feature updates, dead letters, late
# events, transitions, alerts, notifications, backfill end markers): at least once, one request in
# flight so a retry keeps each partition's order, and WITHOUT idempotence. WHY: every consumer of
# these topics is idempotent (versioned feature writes, ids claimed in Redis), so a duplicate costs
# nothing, while an idempotent producer can lose a batch: tansu 0.6.0's S3 storage stores the
# producer's sequence number before the batch, and a broker killed between the two answers the
# resend with DUPLICATE_SEQUENCE_NUMBER, which both client libraries report as delivered. Measured:
# in two series of 14 SIGKILLs mid-stream, 5 and 4 lost a batch an idempotent producer was told was
# delivered; without idempotence, tests/integration/test_durable_broker.py (docs/operations.md
# "Durable broker").
PRODUCER_DELIVERY = {"acks": "all", "enable.idempotence": False, "max.in.flight.requests.per.connection": 1}


class KafkaAccessError(RuntimeError):
    """A Kafka client cannot be set up (a secret missing) or the broker refused or did not answer."""


def _is_sasl(kafka: KafkaConfig) -> bool:
    return kafka.security.protocol.startswith("SASL_")


def _is_ssl(kafka: KafkaConfig) -> bool:
    return kafka.security.protocol.endswith("SSL")


def sasl_password(kafka: KafkaConfig, environ=None) -> str:
    environ = os.environ if environ is None else environ
    password = environ.get(SASL_PASSWORD_ENV)
    if not password:
        raise KafkaAccessError(f"kafka.security.protocol is {kafka.security.protocol} with user "
                                 f"{kafka.security.sasl_username!r} but {SASL_PASSWORD_ENV} is not set "
                                 f"(its password; secrets come only from the environment)")
    return password


def client_config(kafka: KafkaConfig, extra: dict | None = None, environ=None) -> dict:
    """Settings for confluent_kafka Producer / Consumer / AdminClient: bootstrap and security,
    then `extra` (group.id, acks, ...)."""
    s = kafka.security
    # log_level 5: librdkafka's notices, warnings and errors reach the log; its info lines (6, its
    # default: e.g. "Purging 1 unserved events from background queue" as every producer closes) not
    conf = {"bootstrap.servers": kafka.bootstrap, "log_level": 5}
    if s.protocol != "PLAINTEXT":
        conf["security.protocol"] = s.protocol
    if _is_sasl(kafka):
        conf.update({"sasl.mechanisms": s.sasl_mechanism, "sasl.username": s.sasl_username,
                     "sasl.password": sasl_password(kafka, environ)})
    if _is_ssl(kafka):
        if s.ssl_ca_file:
            conf["ssl.ca.location"] = s.ssl_ca_file
        if s.ssl_cert_file:
            conf["ssl.certificate.location"] = s.ssl_cert_file
            conf["ssl.key.location"] = s.ssl_key_file or s.ssl_cert_file
            key_password = (os.environ if environ is None else environ).get(KEY_PASSWORD_ENV)
            if key_password:
                conf["ssl.key.password"] = key_password
        # librdkafka's name for "no hostname check" is none; the JVM's is the empty string
        conf["ssl.endpoint.identification.algorithm"] = "https" if s.ssl_check_hostname else "none"
    conf.update(extra or {})
    return conf


def flink_sink_properties() -> dict:
    """PRODUCER_DELIVERY as the Flink Kafka sink's `properties.*` options (the Java kafka-clients
    enable idempotence by default since 3.0)."""
    return {f"properties.{k}": str(v).lower() for k, v in PRODUCER_DELIVERY.items()}


def jaas_quote(value: str) -> str:
    """A JAAS option value: in double quotes, with backslash and double quote escaped (the JAAS
    parser reads backslash escapes inside quoted strings)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_config(kafka: KafkaConfig, environ=None) -> str:
    s = kafka.security
    return (f"{_LOGIN_MODULES[s.sasl_mechanism]} required username={jaas_quote(s.sasl_username)} "
            f"password={jaas_quote(sasl_password(kafka, environ))};")


def flink_properties(kafka: KafkaConfig, environ=None) -> dict:
    """The Flink Kafka connector's `properties.*` table options (passed to the Java
    kafka-clients, >= 2.7 for PEM files): bootstrap and security."""
    s = kafka.security
    props = {"bootstrap.servers": kafka.bootstrap}
    if s.protocol != "PLAINTEXT":
        props["security.protocol"] = s.protocol
    if _is_sasl(kafka):
        props.update({"sasl.mechanism": s.sasl_mechanism, "sasl.jaas.config": jaas_config(kafka, environ)})
    if _is_ssl(kafka):
        if s.ssl_ca_file:
            props.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": s.ssl_ca_file})
        if s.ssl_cert_file:  # one PEM file with the certificate chain and the key (see the config)
            props.update({"ssl.keystore.type": "PEM", "ssl.keystore.location": s.ssl_cert_file})
            key_password = (os.environ if environ is None else environ).get(KEY_PASSWORD_ENV)
            if key_password:
                props["ssl.key.password"] = key_password
        props["ssl.endpoint.identification.algorithm"] = "https" if s.ssl_check_hostname else ""
    return {f"properties.{k}": v for k, v in props.items()}


def sql_options(kafka: KafkaConfig, quote, environ=None) -> str:
    """flink_properties as lines of a Flink DDL WITH clause (`quote`: the SQL string literal
    quoting of jobs/sql.py), each ending with a comma."""
    return "".join(f"  {quote(k)} = {quote(v)},\n" for k, v in flink_properties(kafka, environ).items())


def redacted(text_or_conf):
    """A copy safe to print or log: passwords in a client config dict, or in text such as a DDL
    or an error message, replaced by a mask."""
    if isinstance(text_or_conf, dict):
        out = {}
        for k, v in text_or_conf.items():
            if k in _SECRET_KEYS:
                out[k] = MASK
            elif isinstance(v, str) and "jaas.config" in k:
                out[k] = _JAAS_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", v)
            else:
                out[k] = v
        return out
    # a JAAS string keeps its double quotes inside a SQL literal (only single quotes are doubled)
    text = _JAAS_PASSWORD.sub(rf"\g<1>{MASK}\g<3>", str(text_or_conf))
    return re.sub(r"('properties\.ssl\.key\.password'\s*=\s*')((?:[^']|'')*)(')", rf"\g<1>{MASK}\g<3>", text)


def password_free(text: str, environ=None) -> str:
    """`text` with the configured secrets' values masked wherever they appear (e.g. in a client
    library's error message)."""
    environ = os.environ if environ is None else environ
    for var in (SASL_PASSWORD_ENV, KEY_PASSWORD_ENV):
        value = environ.get(var)
        if value:
            text = text.replace(value, MASK)
    return text


def connect_problem(conf: dict, timeout: float = 10.0, environ=None) -> str | None:
    """None when the broker answers a metadata request made with `conf` (client_config), else
    why not in one line: the client library's own words for a refused login or a failed TLS
    handshake when there are any (its generic 'transport failure' hides them), secrets masked."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list = []
    # its log lines would repeat the reason returned here every few milliseconds: off
    admin = AdminClient({**conf, "error_cb": errors.append, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout)
        return None
    except KafkaException as e:
        admin.poll(0.5)  # error_cb runs only from poll
        specific = [x.str() for x in errors if x.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL)]
        reason = specific[-1] if specific else e.args[0].str()
        return password_free(f"Kafka at {conf.get('bootstrap.servers')} "
                             f"({conf.get('security.protocol', 'PLAINTEXT')}): {reason}", environ)

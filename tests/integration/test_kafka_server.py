"""scripts/kafka-test-server: a real Kafka broker (KRaft, one node) that takes records, and
transactions whose aborted records a read_committed consumer never sees."""
import time
import uuid

from conftest import KafkaTestServer


def test_produce_and_consume_a_record(kafka):
    topic = f"t-plain-{uuid.uuid4().hex[:8]}"
    p = kafka.producer()
    p.produce(topic, key=b"k1", value=b"hello")
    assert p.flush(30) == 0
    recs = kafka.read_all(topic, idle=3)
    assert [(r[2], r[3]) for r in recs] == [(b"k1", b"hello")]


def test_aborted_transactions_are_invisible_to_read_committed(kafka):
    topic = f"t-txn-{uuid.uuid4().hex[:8]}"
    p = kafka.producer(**{"transactional.id": f"test-{topic}"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce(topic, key=b"a", value=b"committed-1")
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce(topic, key=b"b", value=b"aborted")
    p.flush(30)
    p.abort_transaction(30)
    p.begin_transaction()
    p.produce(topic, key=b"c", value=b"committed-2")
    p.commit_transaction(30)
    committed = kafka.read_all(topic, idle=3)
    assert [r[3] for r in committed] == [b"committed-1", b"committed-2"]
    # read_uncommitted sees the aborted record too (it is in the log, with its abort marker)
    everything = kafka.read_all(topic, idle=3, **{"isolation.level": "read_uncommitted"})
    assert [r[3] for r in everything] == [b"committed-1", b"aborted", b"committed-2"]


def test_a_second_server_with_data_survives_a_restart(tmp_path):
    server = KafkaTestServer(data=tmp_path / "k").start()
    try:
        topic = "t-restart"
        p = server.producer()
        p.produce(topic, value=b"before")
        assert p.flush(30) == 0
        port = server.port
        assert server.stop() == 0
        assert (tmp_path / "k" / "log" / "meta.properties").exists()
        t0 = time.time()
        server.start(port=port)
        assert time.time() - t0 < 120
        p = server.producer()
        p.produce(topic, value=b"after")
        assert p.flush(30) == 0
        assert [r[3] for r in server.read_all(topic, idle=3)] == [b"before", b"after"]
    finally:
        server.stop()


def test_a_server_without_data_leaves_nothing_behind(tmp_path):
    server = KafkaTestServer(tmpdir=tmp_path).start()
    assert server.port > 0 and len(list(tmp_path.iterdir())) == 1  # its temporary log directory
    rc = server.stop()  # SIGTERM: a clean stop
    left = [str(p) for p in tmp_path.rglob("*")]
    assert (rc, left) == (0, [])

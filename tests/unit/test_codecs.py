"""Every compression codec Kafka defines decodes, or start-up says which one cannot and why."""

import pytest
from kafka import codec as kafka_codec

from pulsemart.config import load_settings
from pulsemart.stream import reader
from pulsemart.stream.reader import MissingCodecError, ReadError, consumer_config, require_codecs


@pytest.mark.parametrize("name", ["gzip", "snappy", "lz4", "zstd"])
def test_every_codec_round_trips_through_kafka_python(name):
    encode = {
        "gzip": kafka_codec.gzip_encode,
        "snappy": kafka_codec.snappy_encode,
        "lz4": kafka_codec.lz4_encode,
        "zstd": kafka_codec.zstd_encode,
    }[name]
    decode = {
        "gzip": kafka_codec.gzip_decode,
        "snappy": kafka_codec.snappy_decode,
        "lz4": kafka_codec.lz4_decode,
        "zstd": kafka_codec.zstd_decode,
    }[name]
    payload = b'{"event_id": "e1", "event_type": "product_view"}' * 2_000
    assert decode(encode(payload)) == payload


def test_the_installed_dependencies_pass_the_start_up_check():
    require_codecs()


def test_a_missing_codec_is_one_error_naming_the_codec_and_its_package(monkeypatch):
    monkeypatch.setitem(reader.CODECS, "zstd", (lambda: False, "zstandard"))
    monkeypatch.setitem(reader.CODECS, "snappy", (lambda: False, "python-snappy"))
    with pytest.raises(MissingCodecError) as raised:
        require_codecs()
    message = str(raised.value)
    assert "zstd (install the 'zstandard' package)" in message
    assert "snappy (install the 'python-snappy' package)" in message
    assert "lz4" not in message and "gzip" not in message
    # A ReadError, so every command already turns it into one clear Error line.
    assert isinstance(raised.value, ReadError)


def test_consumers_are_refused_before_they_connect_when_a_codec_is_missing(monkeypatch):
    monkeypatch.setitem(reader.CODECS, "lz4", (lambda: False, "lz4"))
    # The bootstrap names nothing that listens: the codec check must fail first.
    monkeypatch.setenv("PULSEMART_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    with pytest.raises(MissingCodecError, match="lz4"):
        reader.make_consumer(load_settings(), request_timeout_s=1)


def test_consumers_read_committed_records_only():
    config = consumer_config(load_settings())
    assert config["isolation_level"] == "read_committed"
    assert (
        consumer_config(load_settings(), group_id="pulsemart-realtime")["group_id"]
        == "pulsemart-realtime"
    )

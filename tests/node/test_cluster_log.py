"""The project's NATS servers and the JetStream log, with real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.cluster.nats_servers import NatsCluster, render_config
from node.pipeline.jetstream import JetStreamLog

pytestmark = pytest.mark.slow


def test_config_routes_each_server_to_the_others(tmp_path: Path):
    cluster = NatsCluster(tmp_path, 3)
    for server in cluster.servers:
        text = server.config_file.read_text()
        own = server.ports.cluster
        for other in cluster.servers:
            route = f"nats-route://127.0.0.1:{other.ports.cluster}"
            assert (route in text) == (other.ports.cluster != own)
        assert str(server.directory / "jetstream") in text
    assert "127.0.0.1" in render_config("n", cluster.servers[0].ports, tmp_path, [1])


async def _read_all(
    log: JetStreamLog, start: int, count: int, timeout: float = 30.0
) -> list[bytes]:
    async def until() -> None:
        while log.committed < start + count:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until(), timeout)
    return log.read(start, count)


def test_two_writers_one_order_and_a_resumed_reader(tmp_path: Path):
    async def main(urls: list[str]) -> None:
        a = await JetStreamLog.open(urls, name="a")
        b = await JetStreamLog.open(urls[1:], name="b")
        try:
            futures = [(a if i % 2 else b).append(b"e%d" % i) for i in range(200)]
            positions = await asyncio.gather(*futures)
            assert sorted(positions) == list(range(200))
            seen_a = await _read_all(a, 0, 200)
            seen_b = await _read_all(b, 0, 200)
            assert seen_a == seen_b
            assert [seen_a[p] for p in positions] == [b"e%d" % i for i in range(200)]
            point = a.locate(150)
            assert (b.locate(150), point.position) == (point, 150)
            resumed = await JetStreamLog.open(urls, start=point, name="c")
            try:
                assert await _read_all(resumed, 150, 50) == seen_a[150:]
            finally:
                await resumed.close()
        finally:
            await a.close()
            await b.close()

    with NatsCluster(tmp_path) as cluster:
        asyncio.run(main(cluster.urls))
    assert not any(server.running for server in cluster.servers)


def test_the_log_survives_the_loss_of_a_server(tmp_path: Path):
    cluster = NatsCluster(tmp_path)

    async def main() -> None:
        reader = await JetStreamLog.open(cluster.urls[1:], name="reader")
        writer = await JetStreamLog.open(cluster.urls, name="writer")
        try:
            for i in range(20):
                await writer.append(b"before%d" % i)
            cluster.servers[0].kill()
            appended = 0
            for _ in range(400):  # appends fail while a new leader is elected, then go on
                try:
                    await writer.append(b"after%d" % appended)
                    appended += 1
                except Exception:
                    await asyncio.sleep(0.05)
                if appended == 20:
                    break
            assert appended == 20

            async def until_last() -> list[bytes]:
                while b"after19" not in reader.read(0, reader.committed):
                    await asyncio.sleep(0.01)
                return reader.read(0, reader.committed)

            entries = await asyncio.wait_for(until_last(), 30)
            assert entries[:20] == [b"before%d" % i for i in range(20)]
            # an append that timed out may have been stored too, and was retried: once each
            after = list(dict.fromkeys(e for e in entries[20:] if e.startswith(b"after")))
            assert after == [b"after%d" % i for i in range(20)]
        finally:
            await writer.close()
            await reader.close()

    with cluster:
        asyncio.run(main())

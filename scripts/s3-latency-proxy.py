#!/usr/bin/env python3
"""A TCP proxy that holds every request for a fixed delay before passing it on: in front of a moto
server on 127.0.0.1 it gives each S3 request a round trip like S3's time to first byte, which is
what many downloads in flight hide (scripts/bench-s3). Bytes pass unchanged; the delay applies to
each chunk the client sends (an S3 GET is one chunk), not to the answers.

  s3-latency-proxy.py --listen PORT --upstream PORT --delay-ms 30
"""

import argparse
import asyncio


async def pump(reader, writer, delay):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=30.0)
    args = parser.parse_args()
    delay = args.delay_ms / 1000

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", args.upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pump(client_reader, up_writer, delay), pump(up_reader, client_writer, 0)
        )

    server = await asyncio.start_server(handle, "127.0.0.1", args.listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

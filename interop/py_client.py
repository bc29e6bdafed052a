"""A python `websockets` client that checks a tolqin echo server.

Usage: py_client.py ws://HOST:PORT/
Prints one line per check and exits non-zero if any fails.
"""
import asyncio
import sys

from websockets.asyncio.client import connect

failures = 0


def check(name, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""), flush=True)
    if not ok:
        failures += 1


async def main(url):
    async with connect(url, max_size=64 << 20) as ws:
        names = [e.name for e in ws.protocol.extensions]
        check("permessage-deflate negotiated", names == ["permessage-deflate"], repr(names))
        for name, message in [
            ("text", "Hello from python"),
            ("empty text", ""),
            ("unicode text", "κόσμε €𝄞"),
            ("binary", bytes(range(256))),
            ("1 MiB binary", bytes(i % 251 for i in range(1 << 20))),
        ]:
            await ws.send(message)
            back = await ws.recv()
            check(f"echo {name}", back == message and type(back) is type(message), repr(back)[:60])
        pong = await ws.ping(b"python ping")
        await asyncio.wait_for(pong, 10)
        check("ping answered with pong", True)
        await ws.close(4000, "bye")
        check("close 4000 echoed", ws.close_code == 4000, f"close_code={ws.close_code}")
    # Without compression too.
    async with connect(url, compression=None) as ws:
        check("no extension when not offered", ws.protocol.extensions == [], repr(ws.protocol.extensions))
        await ws.send("plain " * 100)
        check("echo uncompressed", await ws.recv() == "plain " * 100)
    # The server closes first (our close handshake), python sees a clean close.
    async with connect(url) as ws:
        await ws.close()
        check("close 1000 clean", ws.close_code == 1000, f"close_code={ws.close_code}")


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
    sys.exit(1 if failures else 0)

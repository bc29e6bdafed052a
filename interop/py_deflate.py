"""permessage-deflate interop with python `websockets`, one parameter combination at a time.

    py_deflate.py server COMBO        echo server; prints `listening on ws://HOST:PORT`
    py_deflate.py client URL COMBO    checks an echo server; one line per check; exit 1 on failure

COMBO is a comma-separated list of: default, snct (server_no_context_takeover), cnct
(client_no_context_takeover), smwb=N (server_max_window_bits), cmwb=N (client_max_window_bits).
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)


def params(combo):
    p = {}
    for item in combo.split(","):
        if item == "snct":
            p["server_no_context_takeover"] = True
        elif item == "cnct":
            p["client_no_context_takeover"] = True
        elif item.startswith("smwb="):
            p["server_max_window_bits"] = int(item[5:])
        elif item.startswith("cmwb="):
            p["client_max_window_bits"] = int(item[5:])
    return p


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def server(combo):
    factory = ServerPerMessageDeflateFactory(**params(combo))
    async with serve(echo, "127.0.0.1", 0, extensions=[factory], compression=None, max_size=64 << 20) as srv:
        print(f"listening on ws://127.0.0.1:{srv.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Future()


async def client(url, combo):
    p = params(combo)
    if "client_max_window_bits" not in p:
        p["client_max_window_bits"] = True
    factory = ClientPerMessageDeflateFactory(**p)
    failures = 0
    async with connect(url, extensions=[factory], compression=None, max_size=64 << 20) as ws:
        names = [e.name for e in ws.protocol.extensions]
        ok = names == ["permessage-deflate"]
        print(("ok   " if ok else "FAIL ") + f"negotiated {combo}: {ws.response.headers.get('Sec-WebSocket-Extensions')}", flush=True)
        failures += not ok
        messages = ["the same compressible text, again and again. " * 40] * 3
        messages += [bytes(i % 7 for i in range(1 << 20)), "κόσμε " * 1000, ""]
        for m in messages:
            await ws.send(m)
            back = await ws.recv()
            ok = back == m
            print(("ok   " if ok else "FAIL ") + f"echo {type(m).__name__} of {len(m)}", flush=True)
            failures += not ok
    return failures


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(server(sys.argv[2]))
    else:
        sys.exit(1 if asyncio.run(asyncio.wait_for(client(sys.argv[2], sys.argv[3]), 60)) else 0)

"""A python `websockets` server for interop tests.

Paths: /echo echoes every message; /close4000 closes with 4000 "bye" after the first message;
/drop drops the TCP connection after the first message; /protocol echoes the chosen subprotocol
as a text message. Prints `listening on ws://HOST:PORT` when ready.
"""
import asyncio
import sys

from websockets.asyncio.server import serve


async def handler(ws):
    path = ws.request.path
    if path == "/protocol":
        await ws.send(ws.subprotocol or "")
        await ws.wait_closed()
        return
    async for message in ws:
        if path == "/close4000":
            await ws.close(4000, "bye")
            return
        if path == "/drop":
            ws.transport.abort()
            return
        await ws.send(message)


def select_subprotocol(connection, offered):
    # The first of ours that the client offered, or none (still accepted).
    return next((p for p in ["chat", "superchat"] if p in offered), None)


async def main():
    async with serve(handler, "127.0.0.1", 0, max_size=64 << 20, select_subprotocol=select_subprotocol) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)

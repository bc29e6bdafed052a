"""py_server.py's paths over TLS, for interop tests of our wss:// client.

Usage: py_wss_server.py CERT.pem KEY.pem
Prints `listening on wss://127.0.0.1:PORT` when ready.
"""
import asyncio
import ssl
import sys

from websockets.asyncio.server import serve

from py_server import handler, select_subprotocol


async def main(cert, key):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with serve(handler, "127.0.0.1", 0, ssl=context, max_size=64 << 20, select_subprotocol=select_subprotocol) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening on wss://127.0.0.1:{port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2]))
    except KeyboardInterrupt:
        sys.exit(0)

"""A python `websockets` testee client for Autobahn-style fuzzing servers (as the `websockets`
project tests its client): gets the case count, echoes every message of every case, then asks
for the reports.

Usage: py_autobahn_client.py ws://HOST:PORT AGENT
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException


async def main(base, agent):
    async with connect(f"{base}/getCaseCount") as ws:
        count = int(await ws.recv())
    for case in range(1, count + 1):
        try:
            async with connect(f"{base}/runCase?case={case}&agent={agent}", max_size=2**25) as ws:
                async for message in ws:
                    await ws.send(message)
        except (WebSocketException, OSError):
            pass
    async with connect(f"{base}/updateReports?agent={agent}"):
        pass


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1].rstrip("/"), sys.argv[2]))

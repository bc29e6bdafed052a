# N wss:// connections (bench/tls_idle.sh): each echoes one message, then all stay idle.
import asyncio, ssl, sys, websockets
async def main(url, ca, n):
    ctx = ssl.create_default_context(cafile=ca)
    conns = []
    sem = asyncio.Semaphore(50)
    async def one():
        async with sem:
            ws = await websockets.connect(url, ssl=ctx, compression=None, ping_interval=None, max_queue=1)
            await ws.send("x"); await ws.recv()
            conns.append(ws)
    await asyncio.gather(*[one() for _ in range(n)])
    print("open", len(conns), flush=True)
    await asyncio.sleep(float(sys.argv[4]))
asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))

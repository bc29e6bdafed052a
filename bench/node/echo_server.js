// Node `ws` echo server for tolqin's benchmark comparison (bench/, `tolqin-bench compare`).
// Usage: node echo_server.js [--listen HOST:PORT]   (port 0 picks a free port)
// Prints `listening on ws://HOST:PORT` when ready. permessage-deflate is off: the comparison
// measures plain framing. `bufferutil` (masking in C) is used by `ws` when it is installed.
'use strict';
const { WebSocketServer } = require('ws');

const i = process.argv.indexOf('--listen');
const listen = i >= 0 ? process.argv[i + 1] : '127.0.0.1:0';
const sep = listen.lastIndexOf(':');
const host = listen.slice(0, sep);
const port = Number(listen.slice(sep + 1));

const wss = new WebSocketServer({ host, port, perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  req.socket.setNoDelay(true);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`listening on ws://${a.address}:${a.port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

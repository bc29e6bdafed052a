// Node `ws` echo server for tolqin's benchmark comparison (bench/, `tolqin-bench compare`).
// Usage: node echo_server.js [--listen HOST:PORT] [--deflate]   (port 0 picks a free port)
// Prints `listening on ws://HOST:PORT` when ready. `bufferutil` (masking in C) is used by `ws`
// when it is installed; UTF-8 is checked with Node's own `buffer.isUtf8`.
//
// Without --deflate, permessage-deflate is off: the comparison measures plain framing.
// With --deflate it is accepted with the settings of `tolqin echo` (tolqin-proto's
// DeflateConfig defaults), so that both servers do the same work:
//   level 6, memory level 8, window bits 15 both ways (ws's default when the offer names none),
//   server context takeover kept, client_no_context_takeover granted when offered (ws echoes
//   the offer's parameters), and messages under 32 bytes sent uncompressed.
// About that threshold: ws applies its `threshold` only when the server has no context
// takeover; with context takeover it compresses every message, however short. tolqin applies
// its threshold either way, so the echo below passes `compress` per message to do the same.
'use strict';
const { WebSocketServer } = require('ws');
const { host, port } = require('./listen')();
const deflate = process.argv.includes('--deflate');

// tolqin-proto DeflateConfig::default().threshold
const THRESHOLD = 32;

const perMessageDeflate = deflate
  ? {
      zlibDeflateOptions: { level: 6, memLevel: 8 },
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      threshold: THRESHOLD,
    }
  : false;

const wss = new WebSocketServer({ host, port, perMessageDeflate });
wss.on('connection', (ws, req) => {
  req.socket.setNoDelay(true);
  if (deflate) {
    ws.on('message', (data, isBinary) =>
      ws.send(data, { binary: isBinary, compress: data.length >= THRESHOLD })
    );
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
  ws.on('error', () => {});
});
wss.on('listening', () => {
  const a = wss.address();
  process.stdout.write(`listening on ws://${a.address}:${a.port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

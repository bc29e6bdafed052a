// The article's chat server, for tolqin's chat benchmark (crates/tolqin-chat/examples/chat_load.rs):
// Node `ws`, a Set of clients, and a loop that sends every message (cut to 50 characters) to
// each of them. Usage: node chat_server.js [--listen HOST:PORT]   (port 0 picks a free port)
// Prints `listening on ws://HOST:PORT` when ready. permessage-deflate is off (ws's default).
'use strict';
const http = require('http');
const ws = require('ws');
const { host, port } = require('./listen')();

const wss = new ws.Server({ noServer: true });
const clients = new Set();

const server = http.createServer((req, res) => {
  // Only WebSocket upgrades, as in the article.
  res.writeHead(426).end();
});
server.on('upgrade', (req, socket, head) => {
  socket.setNoDelay(true);
  wss.handleUpgrade(req, socket, head, onSocketConnect);
});

function onSocketConnect(client) {
  clients.add(client);
  client.on('message', (message, isBinary) => {
    // The article's `message.slice(0, 50)`, on the text (ws 8 hands out a Buffer).
    message = isBinary ? message.subarray(0, 50) : message.toString().slice(0, 50);
    for (const c of clients) {
      c.send(message, { binary: isBinary });
    }
  });
  client.on('close', () => clients.delete(client));
  client.on('error', () => {});
}

server.listen(port, host, () => {
  const a = server.address();
  process.stdout.write(`listening on ws://${a.address}:${a.port}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));

// Node `ws` as a peer for interop tests.
//
//   node node_ws.mjs server COMBO        echo server; prints `listening on ws://HOST:PORT`
//   node node_ws.mjs client URL COMBO    checks an echo server; one line per check; exit 1 on failure
//
// COMBO: off | default | a comma-separated list of snct, cnct, smwb=N, cmwb=N
// (permessage-deflate parameters). Server paths: /echo (any other path echoes too),
// /close4000 (closes with 4000 "bye" after one message), /drop (drops TCP after one message),
// /protocol (sends the chosen subprotocol).
import { WebSocket, WebSocketServer } from 'ws';

function deflate(combo) {
  if (combo === 'off') return false;
  const p = { threshold: 0 };
  for (const item of combo.split(',')) {
    if (item === 'snct') p.serverNoContextTakeover = true;
    else if (item === 'cnct') p.clientNoContextTakeover = true;
    else if (item.startsWith('smwb=')) p.serverMaxWindowBits = Number(item.slice(5));
    else if (item.startsWith('cmwb=')) p.clientMaxWindowBits = Number(item.slice(5));
  }
  return p;
}

const [mode, ...args] = process.argv.slice(2);

if (mode === 'server') {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    maxPayload: 64 << 20,
    perMessageDeflate: deflate(args[0] ?? 'default'),
    handleProtocols: (offered) => (offered.has('superchat') ? 'superchat' : offered.has('chat') ? 'chat' : false),
  });
  wss.on('listening', () => console.log(`listening on ws://127.0.0.1:${wss.address().port}`));
  wss.on('connection', (ws, req) => {
    // ws reports protocol violations as 'error' events (then closes); unhandled, they would
    // crash the process.
    ws.on('error', () => {});
    if (req.url === '/protocol') {
      ws.send(ws.protocol || '');
      return;
    }
    ws.on('message', (data, isBinary) => {
      if (req.url === '/close4000') ws.close(4000, 'bye');
      else if (req.url === '/drop') ws.terminate();
      else ws.send(data, { binary: isBinary });
    });
  });
} else {
  const [url, combo] = args;
  let failures = 0;
  const check = (name, ok, detail = '') => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${ok ? '' : ': ' + detail}`);
    if (!ok) failures++;
  };
  const ws = new WebSocket(url, { perMessageDeflate: deflate(combo ?? 'default'), maxPayload: 64 << 20 });
  const timer = setTimeout(() => { check('finished in time', false); process.exit(1); }, 30000);
  const text = 'the same compressible text, again and again. '.repeat(40);
  const big = Buffer.alloc(1 << 20, 0).map((_, i) => i % 7);
  const messages = [text, text, 'κόσμε €𝄞', '', big, Buffer.from([0, 1, 2, 255])];
  let received = 0;
  ws.on('open', () => {
    const negotiated = typeof ws.extensions === 'string' ? ws.extensions : Object.keys(ws.extensions ?? {}).join(',');
    check(`negotiated (${combo}): ${negotiated || 'none'}`, combo === 'off' ? !negotiated.includes('permessage-deflate') : negotiated.includes('permessage-deflate'), negotiated);
    for (const m of messages) ws.send(m);
  });
  ws.on('message', (data, isBinary) => {
    const expected = messages[received++];
    const same = typeof expected === 'string' ? !isBinary && data.toString() === expected : isBinary && Buffer.compare(data, expected) === 0;
    check(`echo ${typeof expected === 'string' ? 'text' : 'binary'} of ${expected.length}`, same);
    if (received === messages.length) ws.close(4000, 'bye');
  });
  ws.on('close', (code, reason) => {
    clearTimeout(timer);
    check('close 4000 with reason echoed', code === 4000 && reason.toString() === 'bye', `${code} ${reason}`);
    process.exit(failures ? 1 : 0);
  });
  ws.on('error', (e) => check('no error', false, String(e)));
}

// A Node `ws` client that checks a tolqin echo server (ws:// or wss://; for a private
// certificate start node with NODE_EXTRA_CA_CERTS=cert.pem).
//
// Usage: node node_client.mjs wss://HOST:PORT/
// Prints one line per check and exits non-zero if any fails.
import WebSocket from "ws";

let failures = 0;
function check(name, ok, detail = "") {
  console.log((ok ? "ok   " : "FAIL ") + name + (!ok && detail ? `: ${detail}` : ""));
  if (!ok) failures += 1;
}

function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 64 << 20 });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

function next(ws) {
  return new Promise((resolve, reject) => {
    ws.once("message", (data, isBinary) => resolve({ data, isBinary }));
    ws.once("error", reject);
  });
}

function closed(ws) {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
}

async function main(url) {
  const ws = await open(url);
  for (const [name, message, binary] of [
    ["text", "Hello from node", false],
    ["empty text", "", false],
    ["unicode text", "κόσμε €𝄞", false],
    ["binary", Buffer.from([...Array(256).keys()]), true],
    ["1 MiB binary", Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => i % 251)), true],
  ]) {
    ws.send(message, { binary });
    const back = await next(ws);
    const same = binary ? back.isBinary && Buffer.compare(back.data, message) === 0 : !back.isBinary && back.data.toString() === message;
    check(`echo ${name}`, same, `${back.data.length} bytes, binary=${back.isBinary}`);
  }
  const pong = new Promise((resolve) => ws.once("pong", resolve));
  ws.ping("node ping");
  check("ping answered with pong", (await pong).toString() === "node ping");
  const done = closed(ws);
  ws.close(4000, "bye");
  const { code, reason } = await done;
  check("close 4000 echoed", code === 4000, `code=${code} reason=${reason}`);
}

const timer = setTimeout(() => {
  console.log("FAIL timed out");
  process.exit(1);
}, 60_000);
main(process.argv[2])
  .catch((e) => {
    check("no error", false, String(e));
  })
  .finally(() => {
    clearTimeout(timer);
    process.exit(failures ? 1 : 0);
  });

// The `--listen HOST:PORT` argument of the benchmark's Node servers (default 127.0.0.1:0).
'use strict';
module.exports = function listenAddress(argv = process.argv) {
  const i = argv.indexOf('--listen');
  const listen = i >= 0 ? argv[i + 1] : '127.0.0.1:0';
  const sep = listen.lastIndexOf(':');
  return { host: listen.slice(0, sep), port: Number(listen.slice(sep + 1)) };
};

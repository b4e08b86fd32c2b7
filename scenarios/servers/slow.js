// A Node http server whose event loop blocks for BLOCK_MS of synchronous work per request (JSON
// parsing, a template, a sync fs call), as in seed 003. listen() gets no backlog, so Node passes
// its default, 511; BACKLOG=4096 is the seed's fix, `server.listen({ backlog: 4096 })`.
// Usage: node slow.js PORT HOST
const http = require('http');
const [port, host] = [Number(process.argv[2]), process.argv[3]];
const blockMs = Number(process.env.BLOCK_MS || 2);
const backlog = process.env.BACKLOG ? Number(process.env.BACKLOG) : undefined;

http
  .createServer((req, res) => {
    const until = Date.now() + blockMs;
    while (Date.now() < until); // the event loop is busy: nothing is accepted meanwhile
    res.end('ok\n');
  })
  .listen({ port, host, backlog });

// A Node HTTP server written for PM2, unchanged for zpm: `listen(port)` on a fixed port.
//   PORT=8000 zpm start examples/node/server.js -i 4    # 4 instances, one port
//   zpm reload server                                     # no request refused
// It answers with its pid, and says ready when it listens (for --wait-ready).
const http = require('http');
http.createServer((req, res) => res.end(String(process.pid))).listen(Number(process.env.PORT), () => {
  if (process.send) process.send('ready');
});

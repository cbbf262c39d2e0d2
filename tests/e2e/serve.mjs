// A static file server for the built app (dist/), for the tests, the benchmarks and demo.sh.
// Run directly: `node tests/e2e/serve.mjs DIR PORT`.
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.safetensors': 'application/octet-stream', '.onnx': 'application/octet-stream',
  '.txt': 'text/plain', '.md': 'text/markdown', '.mjs.map': 'application/json',
};

/// Serves `root`; `cors` adds Access-Control-Allow-Origin: * (a second origin for image URLs);
/// `isolated` makes the pages cross-origin isolated (COOP + COEP), which onnxruntime-web's
/// threads need (the benchmark's peer; our page needs no such headers); `tls` ({key, cert}, PEM)
/// serves https (another server a link names: the page fetches other servers' images over https
/// only).
export function serve(root, { port = 0, cors = false, host = '127.0.0.1', isolated = false, tls = null } = {}) {
  root = resolve(root);
  const server = (tls ? (handler) => createTlsServer(tls, handler) : createServer)((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = normalize(join(root, path));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      const size = statSync(file).size;
      const headers = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': size, 'cache-control': 'no-cache' };
      if (cors) headers['access-control-allow-origin'] = '*';
      if (isolated) Object.assign(headers, { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
      res.writeHead(200, headers);
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  return new Promise((ok) => server.listen(port, host, () => ok({ server, url: `${tls ? 'https' : 'http'}://${host === '0.0.0.0' ? 'localhost' : host}:${server.address().port}/` })));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [root = 'dist', port = '8080'] = process.argv.slice(2);
  const { url } = await serve(root, { port: Number(port), host: 'localhost' });
  console.log(`serving ${root} at ${url}`);
}

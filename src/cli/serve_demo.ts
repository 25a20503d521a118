/**
 * `convnorm serve-demo`: the demo page (built into dist/demo/ by
 * scripts/build-demo.mjs) as static files on a local HTTP server. The server
 * sends COOP and COEP, so the page is cross-origin isolated and
 * tfjs-backend-wasm can run its threaded build.
 */
import {existsSync} from 'node:fs';
import {createServer, Server} from 'node:http';
import {AddressInfo} from 'node:net';
import {fileURLToPath} from 'node:url';

import sirv from 'sirv';

/** Where the built page is: dist/demo/, beside this module's dist/cli/. */
export const DEMO_DIR = fileURLToPath(new URL('../demo/', import.meta.url));

export interface ServeDemoOptions {
  /** TCP port; 0 takes a free one. Default 8080. */
  port?: number;
  /** Interface to listen on. Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Folder of the built page. Default DEMO_DIR. */
  root?: string;
}

export interface DemoServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, got ${port}`);
  return port;
}

/** Starts the server; resolves once it listens, with its URL. */
export async function serveDemo(options: ServeDemoOptions = {}): Promise<DemoServer> {
  const port = checkPort(options.port ?? 8080);
  const host = options.host ?? '127.0.0.1';
  const root = options.root ?? DEMO_DIR;
  if (!existsSync(`${root}/index.html`)) {
    throw new Error(`the demo page is not built (no ${root}index.html): run npm run build`);
  }
  const files = sirv(root, {
    dev: false, etag: true,
    setHeaders: response => {
      response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      response.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    },
  });
  const server = createServer((request, response) => files(request, response, () => {
    response.writeHead(404, {'content-type': 'text/plain'}).end('not found');
  }));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === 'EADDRINUSE' ? `port ${port} is in use; pick another with --port` : e.message)));
    server.listen(port, host, resolve);
  });
  const address = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${address.port}/`, server,
    close: () => new Promise<void>(resolve => server.close(() => resolve())),
  };
}

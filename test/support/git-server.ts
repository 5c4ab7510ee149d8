/**
 * A loopback git smart-HTTP server: node's http server running the real `git http-backend` as a
 * CGI, guarded by a token (HTTP Basic with the token as password, or Bearer). Tests point git
 * sources at it to prove tokens travel in headers and never land anywhere else.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Options for {@link startGitServer}. */
export interface GitServerOptions {
  /** Directory holding bare repositories (GIT_PROJECT_ROOT). */
  readonly root: string;
  /** The token every request must carry. */
  readonly token: string;
  /** Speak protocol v2 when the client asks (default true); false forces v0 (no SHA wants). */
  readonly protocolV2?: boolean;
}

/** A running server. */
export interface GitServer {
  /** Base URL, e.g. http://127.0.0.1:PORT/ (append `<repo>.git`). */
  readonly url: string;
  /** Every request: method, path, and whether it was authorised. */
  readonly requests: Array<{ method: string; path: string; authorised: boolean }>;
  /** Every Authorization header value received (to assert how the token travelled). */
  readonly authHeaders: string[];
  close(): Promise<void>;
}

function authorised(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const [scheme, value = ''] = header.split(/\s+/, 2);
  if (/^bearer$/i.test(scheme ?? '')) return value === token;
  if (/^basic$/i.test(scheme ?? '')) {
    const decoded = Buffer.from(value, 'base64').toString();
    return decoded.slice(decoded.indexOf(':') + 1) === token;
  }
  return false;
}

/** Starts the server on an ephemeral loopback port. */
export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  const requests: GitServer['requests'] = [];
  const authHeaders: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const auth = req.headers.authorization;
    if (auth) authHeaders.push(auth);
    const ok = authorised(auth, options.token);
    requests.push({ method: req.method ?? 'GET', path: url.pathname, authorised: ok });
    if (!ok) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: options.root,
      GIT_HTTP_EXPORT_ALL: '1',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_USER: 'test',
      HOME: options.root,
      GIT_CONFIG_NOSYSTEM: '1',
    };
    if (req.headers['content-encoding']) env.HTTP_CONTENT_ENCODING = String(req.headers['content-encoding']);
    const proto = req.headers['git-protocol'];
    if (proto && options.protocolV2 !== false) env.GIT_PROTOCOL = String(proto);
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number.parseInt(v, 10);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on('end', () => {
      if (!headersDone) res.writeHead(502);
      res.end();
    });
    cgi.on('error', () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    authHeaders,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A fault-injecting loopback proxy in front of a real registry, for publish tests: it records
 * every request, can answer chosen requests with an error status, can demand basic or bearer
 * auth (serving its own token endpoint), can hold chosen requests without ever answering (a
 * stalled registry or load balancer), and can be stopped and restarted on the same port to
 * play a registry that goes away mid-run.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';

/** One request the proxy saw. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  /** The status the client got. */
  status: number;
}

/** An injected failure: requests matching `method` and `path` get `status`, `times` times. */
export interface Fault {
  readonly method?: string;
  readonly path: RegExp;
  readonly status: number;
  times: number;
  readonly headers?: Record<string, string>;
}

/** A stall: requests matching `method` and `path` are read and never answered, `times` times. */
export interface Stall {
  readonly method?: string;
  readonly path: RegExp;
  times: number;
  /** When the first matching request arrived (ms since the epoch), 0 until then. */
  firstAt: number;
  /** How many requests it held. */
  held: number;
}

/** Auth the proxy demands. */
export type ProxyAuth =
  | { readonly mode: 'basic'; readonly username: string; readonly password: string }
  | { readonly mode: 'bearer'; readonly username: string; readonly password: string };

/** A running proxy. */
export class RegistryProxy {
  readonly requests: SeenRequest[] = [];
  private readonly faults: Fault[] = [];
  private readonly stalls: Stall[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly tokens = new Set<string>();
  private server: http.Server;
  private constructor(
    private readonly upstream: string,
    private readonly auth: ProxyAuth | undefined,
    readonly port: number,
  ) {
    this.server = this.makeServer();
  }

  /** Starts a proxy for `upstream` (host:port) on a free loopback port (or `port`). */
  static async start(options: { upstream: string; auth?: ProxyAuth; port?: number }): Promise<RegistryProxy> {
    const proxy = new RegistryProxy(options.upstream, options.auth, options.port ?? 0);
    const port = await proxy.listen(options.port ?? 0);
    (proxy as { port: number }).port = port;
    return proxy;
  }

  /** host:port of the proxy. */
  get addr(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Answers the next `times` matching requests with `status`. */
  fail(fault: Omit<Fault, 'times'> & { times?: number }): Fault {
    const f: Fault = { ...fault, times: fault.times ?? 1 };
    this.faults.push(f);
    return f;
  }

  /** Holds the next `times` matching requests (default: all of them) open without an answer. */
  stall(stall: { method?: string; path: RegExp; times?: number }): Stall {
    const s: Stall = { ...stall, times: stall.times ?? Number.POSITIVE_INFINITY, firstAt: 0, held: 0 };
    this.stalls.push(s);
    return s;
  }

  /** Requests that wrote to the registry (uploads and manifest PUTs). */
  writes(): SeenRequest[] {
    return this.requests.filter((r) => r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH');
  }

  /** Stops listening and drops every open connection at once (synchronously), like a crashed registry. */
  down(): void {
    this.server.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    this.server = this.makeServer();
    await this.listen(this.port);
  }

  /** Stops the proxy for good. */
  async close(): Promise<void> {
    this.down();
    await new Promise((r) => setImmediate(r));
  }

  private listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        const addr = this.server.address() as net.AddressInfo;
        resolve(addr.port);
      });
    });
  }

  private makeServer(): http.Server {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    return server;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const seen: SeenRequest = { method: req.method ?? 'GET', path: req.url ?? '/', status: 0 };
    this.requests.push(seen);
    const reply = (status: number, headers: Record<string, string>, body = '') => {
      seen.status = status;
      req.resume();
      res.writeHead(status, headers).end(body);
    };
    if (this.auth && seen.path.startsWith('/token')) {
      if (req.headers.authorization !== basicHeader(this.auth)) {
        reply(401, {}, '{"errors":[]}');
        return;
      }
      const token = randomBytes(16).toString('hex');
      this.tokens.add(token);
      reply(200, { 'content-type': 'application/json' }, JSON.stringify({ token }));
      return;
    }
    const stall = this.stalls.find(
      (s) => s.times > 0 && (!s.method || s.method === seen.method) && s.path.test(seen.path),
    );
    if (stall) {
      stall.times--;
      stall.held++;
      stall.firstAt ||= Date.now();
      // Read the request so the client waits for an answer, then never write one.
      req.resume();
      return;
    }
    const fault = this.faults.find(
      (f) => f.times > 0 && (!f.method || f.method === seen.method) && f.path.test(seen.path),
    );
    if (fault) {
      fault.times--;
      reply(fault.status, { 'content-type': 'application/json', ...fault.headers }, '{"errors":[]}');
      return;
    }
    if (this.auth && !this.authorized(req.headers.authorization)) {
      const challenge =
        this.auth.mode === 'basic'
          ? 'Basic realm="slipway-test"'
          : `Bearer realm="http://${this.addr}/token",service="slipway-test"`;
      reply(
        401,
        { 'www-authenticate': challenge, 'content-type': 'application/json' },
        '{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',
      );
      return;
    }
    const headers = { ...req.headers };
    // The registry must not see (and reject) the proxy's own credentials.
    delete headers.authorization;
    const [host, port] = this.upstream.split(':');
    const upstream = http.request(
      { host, port: Number(port), method: seen.method, path: seen.path, headers },
      (up) => {
        seen.status = up.statusCode ?? 0;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) reply(502, {}, 'upstream failed');
      else res.destroy();
    });
    req.pipe(upstream);
  }

  private authorized(header: string | undefined): boolean {
    if (!this.auth || !header) return false;
    if (this.auth.mode === 'basic') return header === basicHeader(this.auth);
    return header.startsWith('Bearer ') && this.tokens.has(header.slice(7));
  }
}

function basicHeader(auth: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

/** A loopback port nothing listens on (bound, then released). */
export async function deadPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

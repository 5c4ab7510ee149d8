// A loopback smart-HTTP git server: a small node http server running Debian git's
// `git http-backend` as a CGI for every request (https://git-scm.com/docs/git-http-backend).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A running server; `url(name)` is the clone URL of `<projectRoot>/<name>`. */
export interface GitHttpServer {
  readonly origin: string;
  url(name: string): string;
  close(): Promise<void>;
}

/** The http-backend binary (`git --exec-path`/git-http-backend). */
function backendPath(execPath: string): string {
  const bin = `${execPath}/git-http-backend`;
  if (!existsSync(bin)) throw new Error(`git-http-backend not found at ${bin}; install Debian's git`);
  return bin;
}

/** Serves every repository under `projectRoot` on 127.0.0.1 (a free port), in this process. */
async function serve(projectRoot: string, backend: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const child = spawn(backend, [], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        CONTENT_LENGTH: req.headers['content-length'] ?? '',
        HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        REMOTE_ADDR: '127.0.0.1',
        SERVER_PROTOCOL: 'HTTP/1.1',
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(child.stdin);
    // CGI: headers, a blank line, then the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      const endLf = end < 0 ? head.indexOf('\n\n') : -1;
      if (end < 0 && endLf < 0) return;
      const cut = end >= 0 ? end : endLf;
      const sep = end >= 0 ? 4 : 2;
      let status = 200;
      for (const line of head.subarray(0, cut).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number.parseInt(v, 10) || 200;
        else res.setHeader(k, v);
      }
      res.writeHead(status);
      headersDone = true;
      res.write(head.subarray(cut + sep));
    });
    child.stdout.on('end', () => {
      if (!headersDone) res.writeHead(502);
      res.end();
    });
    child.on('error', () => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * Starts the server in a process of its own, serving every repository under `projectRoot`.
 * Not in the bench's own process: each request forks http-backend, and a fork costs more the
 * more memory the forking process holds (the bench's holds every sample and workload), and the
 * bench's event loop would queue the requests of parallel clients behind its own work.
 */
export async function startGitHttp(projectRoot: string, gitExecPath: string): Promise<GitHttpServer> {
  const backend = backendPath(gitExecPath);
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), projectRoot, backend],
    {
      // Its stdin is the bench's: the server exits when the bench does, however the bench ends.
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /^listening (\d+)\n/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the git http server exited (${code}) before listening`)));
    child.once('error', reject);
  });
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    url: (name) => `${origin}/${name}`,
    close: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

// The server process: `node git-http.ts PROJECT_ROOT BACKEND`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [projectRoot, backend] = process.argv.slice(2) as [string, string];
  const server = await serve(projectRoot, backend);
  const stop = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop).resume();
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
}

/**
 * A loopback HTTP server answering the GitHub and Gitea REST endpoints Slipway's archive sources
 * call, from real bare repositories: GitHub `GET /repos/{o}/{r}/tarball/{sha}` and
 * `GET /repos/{o}/{r}/commits/{sha}`, Gitea `GET /repos/{o}/{r}/archive/{sha}.tar.gz` and
 * `GET /repos/{o}/{r}/git/commits/{sha}`. Archives are made with
 * `git archive --format=tar.gz --prefix=<owner>-<repo>-<sha>/`, as GitHub wraps them.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Options for {@link startArchiveServer}. */
export interface ArchiveServerOptions {
  /** owner/repo -> path of a bare (or any) git repository. */
  readonly repos: Readonly<Record<string, string>>;
  /** The token every request must carry (`token X`, `Bearer X`). */
  readonly token: string;
  /** Serve GitHub tarballs through a 302 to a second path, as api.github.com does (default true). */
  readonly redirect?: boolean;
}

/** A running server. */
export interface ArchiveServer {
  /** The API base URL (use as `apiUrl`). */
  readonly url: string;
  readonly requests: Array<{ method: string; path: string; status: number }>;
  readonly authHeaders: string[];
  close(): Promise<void>;
}

async function commitExists(repo: string, sha: string): Promise<boolean> {
  if (!/^[0-9a-f]{40}$/.test(sha)) return false;
  try {
    await run('git', ['-C', repo, 'cat-file', '-e', `${sha}^{commit}`]);
    return true;
  } catch {
    return false;
  }
}

async function archive(repo: string, prefix: string, sha: string): Promise<Buffer> {
  const { stdout } = await run(
    'git',
    ['-C', repo, 'archive', '--format=tar.gz', `--prefix=${prefix}/`, sha],
    { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/** Starts the server on an ephemeral loopback port. */
export async function startArchiveServer(options: ArchiveServerOptions): Promise<ArchiveServer> {
  const requests: ArchiveServer['requests'] = [];
  const authHeaders: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: unknown, type = 'application/json') => {
      requests.push({ method: req.method ?? 'GET', path: url.pathname, status });
      const data = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      res.writeHead(status, { 'Content-Type': type, 'Content-Length': data.length });
      res.end(data);
    };
    void (async () => {
      // The codeload-style redirect target carries a one-time path, not the token.
      const codeload = /^\/_codeload\/([^/]+)\/([^/]+)\/([0-9a-f]{40})$/.exec(url.pathname);
      if (codeload) {
        const [, o, r, sha] = codeload as unknown as [string, string, string, string];
        const repo = options.repos[`${o}/${r}`];
        if (!repo || !(await commitExists(repo, sha))) return send(404, { message: 'Not Found' });
        return send(200, await archive(repo, `${o}-${r}-${sha.slice(0, 7)}`, sha), 'application/x-gzip');
      }
      const auth = req.headers.authorization ?? '';
      if (auth) authHeaders.push(auth);
      const m = /^(token|bearer)\s+(.+)$/i.exec(auth);
      if (!m || m[2] !== options.token) return send(401, { message: 'Bad credentials' });
      const route = /^\/repos\/([^/]+)\/([^/]+)\/(tarball|commits|git\/commits|archive)\/(.+)$/.exec(
        url.pathname,
      );
      if (!route) return send(404, { message: 'Not Found' });
      const [, owner, name, kind, rest] = route as unknown as [string, string, string, string, string];
      const repo = options.repos[`${owner}/${name}`];
      if (!repo) return send(404, { message: 'Not Found' });
      if (kind === 'commits' || kind === 'git/commits') {
        if (!/^[0-9a-f]{40}$/.test(rest)) return send(422, { message: 'No commit found for SHA' });
        return (await commitExists(repo, rest))
          ? send(200, { sha: rest })
          : send(404, { message: 'Not Found' });
      }
      const sha = kind === 'archive' ? rest.replace(/\.tar\.gz$/, '') : rest;
      if (!(await commitExists(repo, sha))) return send(404, { message: 'Not Found' });
      if (kind === 'tarball' && options.redirect !== false) {
        requests.push({ method: req.method ?? 'GET', path: url.pathname, status: 302 });
        res.writeHead(302, { Location: `/_codeload/${owner}/${name}/${sha}` });
        res.end();
        return;
      }
      const prefix = kind === 'archive' ? name : `${owner}-${name}-${sha}`;
      return send(200, await archive(repo, prefix, sha), 'application/octet-stream');
    })().catch((err: unknown) => send(500, { message: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    authHeaders,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

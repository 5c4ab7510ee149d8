// Deterministic workloads, generated on first use into a cache directory (never committed):
// template repositories, a build context, image tarballs. Same generator version, same bytes
// and the same commit ids on every machine.
import { createCipheriv, createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { plainRunner } from './harness.js';

/** Bump when a generator changes: the cache directory is keyed by it. */
const GENERATOR_VERSION = 1;

/** Where generated workloads live: `$BENCH_WORKLOADS_DIR`, else `~/.cache/slipway-bench/v<N>`. */
export function workloadsRoot(env: NodeJS.ProcessEnv): string {
  const base =
    env.BENCH_WORKLOADS_DIR ||
    path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'slipway-bench');
  return path.join(base, `v${GENERATOR_VERSION}`);
}

/** A deterministic byte stream: AES-128-CTR over zeros, keyed by the seed (fast, incompressible). */
export function prng(seed: string): (n: number) => Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return (n) => cipher.update(Buffer.alloc(n));
}

const WORDS = (
  'agent template prompt server tool config image build stage pin digest registry runner cache ' +
  'layer manifest release smoke verdict source commit tree file path value name model system ' +
  'user policy limit retry timeout token scope route handler queue worker event schema field'
).split(' ');

/** Text that compresses like prose or YAML: lines of words drawn from `rand`. */
function text(rand: (n: number) => Buffer, bytes: number): string {
  const r = rand(bytes);
  let out = '';
  let i = 0;
  while (out.length < bytes) {
    const words = 3 + ((r[i % r.length] ?? 0) % 9);
    const line: string[] = [];
    for (let w = 0; w < words; w += 1) line.push(WORDS[(r[(i + w) % r.length] ?? 0) % WORDS.length] ?? 'x');
    out += `${line.join(' ')}\n`;
    i += words + 1;
  }
  return out.slice(0, bytes);
}

/** Runs git with a fixed identity and dates, so commit ids are the same everywhere. */
async function git(cwd: string, args: string[], when: number): Promise<string> {
  const date = `${1_700_000_000 + when * 3600} +0000`;
  const env = {
    ...process.env,
    GIT_AUTHOR_NAME: 'bench',
    GIT_AUTHOR_EMAIL: 'bench@slipway.invalid',
    GIT_COMMITTER_NAME: 'bench',
    GIT_COMMITTER_EMAIL: 'bench@slipway.invalid',
    GIT_AUTHOR_DATE: date,
    GIT_COMMITTER_DATE: date,
    GIT_CONFIG_NOSYSTEM: '1',
    HOME: cwd,
  };
  const { stdout } = await plainRunner.run('git', ['-C', cwd, ...args], { env });
  return stdout.trim();
}

/** Writes a file, creating its directory. */
async function put(file: string, content: string | Buffer): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

/** One generated template repository. */
export interface TemplateRepo {
  readonly name: string;
  /** Absolute path of the (non-bare) repository. */
  readonly dir: string;
  /** The pinned commit (the last of its history). */
  readonly sha: string;
  readonly files: number;
  readonly bytes: number;
}

/** A set of template repositories. */
export interface TemplateSet {
  readonly dir: string;
  readonly repos: readonly TemplateRepo[];
  readonly files: number;
  readonly bytes: number;
}

/** Shape of a template set. */
export interface TemplateSetSpec {
  /** Names the set's directory and seeds its content. */
  readonly id: string;
  readonly templates: number;
  readonly filesPerTemplate: number;
  /** File sizes are drawn between these (bytes). */
  readonly minBytes: number;
  readonly maxBytes: number;
  /** Text (compressible, like real templates) or random bytes (large assets). */
  readonly content: 'text' | 'binary';
  /** Commits of history before the pinned one, each changing a tenth of the files. */
  readonly history: number;
}

/** Where a file of a generated template goes: a layout like an agent template's. */
function layout(i: number): string {
  if (i === 0) return 'config.yaml';
  const dirs = ['prompts', 'mcp_servers', 'skills/search', 'skills/review', 'tools', 'docs', 'examples'];
  const dir = dirs[i % dirs.length] ?? 'misc';
  const ext = dir === 'mcp_servers' || dir === 'tools' ? 'yaml' : 'md';
  return `${dir}/${String(i).padStart(4, '0')}.${ext}`;
}

/** The template set for `spec`, generated into `root` unless a complete copy is there. */
export async function templateSet(root: string, spec: TemplateSetSpec): Promise<TemplateSet> {
  const dir = path.join(root, `templates-${spec.id}`);
  const marker = path.join(dir, 'set.json');
  try {
    return JSON.parse(await readFile(marker, 'utf8')) as TemplateSet;
  } catch {
    // Not generated yet (or interrupted): start over.
  }
  await rm(dir, { recursive: true, force: true });
  const repos: TemplateRepo[] = [];
  for (let t = 0; t < spec.templates; t += 1) {
    const name = `tpl-${String(t).padStart(2, '0')}`;
    const repo = path.join(dir, name);
    const rand = prng(`${spec.id}/${name}`);
    await mkdir(repo, { recursive: true });
    await git(repo, ['init', '--quiet', '--initial-branch=main'], 0);
    // Served by the loopback git http-backend too: let clients fetch a pinned commit by id.
    await git(repo, ['config', 'uploadpack.allowReachableSHA1InWant', 'true'], 0);
    await git(repo, ['config', 'http.receivepack', 'false'], 0);
    const size = (i: number, c: number) => {
      const r = rand(4).readUInt32LE(0);
      return spec.minBytes + ((r + i * 7919 + c) % (spec.maxBytes - spec.minBytes + 1));
    };
    const write = async (i: number, c: number) => {
      const n = size(i, c);
      await put(path.join(repo, layout(i)), spec.content === 'text' ? text(rand, n) : rand(n));
    };
    let bytes = 0;
    for (let i = 0; i < spec.filesPerTemplate; i += 1) await write(i, 0);
    await git(repo, ['add', '-A'], 0);
    await git(repo, ['-c', 'core.compression=1', 'commit', '--quiet', '-m', 'initial'], 1);
    for (let c = 1; c <= spec.history; c += 1) {
      for (let i = c; i < spec.filesPerTemplate; i += 10) await write(i, c);
      await git(repo, ['add', '-A'], c);
      await git(repo, ['-c', 'core.compression=1', 'commit', '--quiet', '-m', `change ${c}`], c + 1);
    }
    // Packed once, without delta search on random data: every fetch then reuses the pack.
    await git(repo, ['-c', 'pack.window=0', '-c', 'pack.compression=1', 'repack', '-adq'], 0);
    await git(repo, ['gc', '--quiet', '--prune=now'], 0).catch(() => '');
    const sha = await git(repo, ['rev-parse', 'HEAD'], 0);
    const listing = await git(repo, ['ls-tree', '-r', '-l', 'HEAD'], 0);
    for (const line of listing.split('\n')) bytes += Number(line.split(/\s+/)[3] ?? 0) || 0;
    repos.push({ name, dir: repo, sha, files: spec.filesPerTemplate, bytes });
  }
  const set: TemplateSet = {
    dir,
    repos,
    files: repos.reduce((n, r) => n + r.files, 0),
    bytes: repos.reduce((n, r) => n + r.bytes, 0),
  };
  await writeFile(marker, `${JSON.stringify(set, null, 2)}\n`);
  return set;
}

/** A generated build context. */
export interface ContextDir {
  readonly dir: string;
  readonly files: number;
  readonly bytes: number;
}

/** A directory of `files` files totalling about `totalBytes` (mixed text and binary, nested 3 deep). */
export async function contextDir(root: string, files: number, totalBytes: number): Promise<ContextDir> {
  // v2: sizes scaled so the total is about `totalBytes` (v1 came out at three quarters of it).
  const dir = path.join(root, `context-v2-${files}-${totalBytes}`);
  const marker = path.join(root, `context-v2-${files}-${totalBytes}.json`);
  try {
    return JSON.parse(await readFile(marker, 'utf8')) as ContextDir;
  } catch {
    // Not generated yet.
  }
  await rm(dir, { recursive: true, force: true });
  const rand = prng(`context/${files}/${totalBytes}`);
  const avg = Math.floor(totalBytes / files);
  let bytes = 0;
  for (let i = 0; i < files; i += 1) {
    // Mostly small files and a few large ones (every 500th is 40x the mean); the mean is about avg.
    const r = rand(2).readUInt16LE(0) / 65535;
    const n = i % 500 === 0 ? avg * 40 : Math.max(64, Math.floor(avg * (0.15 + 2.25 * r * r)));
    const rel = `src/m${i % 20}/p${Math.floor(i / 20) % 50}/f${i}.${i % 3 === 0 ? 'bin' : 'txt'}`;
    await put(path.join(dir, rel), i % 3 === 0 ? rand(n) : text(rand, n));
    bytes += n;
  }
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /app\n');
  await writeFile(path.join(dir, '.dockerignore'), '**/*.tmp\n');
  const result: ContextDir = { dir, files: files + 2, bytes };
  await writeFile(marker, `${JSON.stringify(result)}\n`);
  return result;
}

/** A tar stream of one file of `bytes` random bytes under `name`, written to `file` (for `docker import`). */
export async function randomTarball(file: string, name: string, bytes: number, seed: string): Promise<void> {
  const rand = prng(seed);
  const out = createWriteStream(file);
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${bytes.toString(8).padStart(11, '0')}\0`, 124);
  header.write('14000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const write = async (chunk: Buffer) => {
    if (!out.write(chunk)) await once(out, 'drain');
  };
  await write(header);
  const CHUNK = 4 * 1024 * 1024;
  for (let left = bytes; left > 0; left -= CHUNK) await write(rand(Math.min(CHUNK, left)));
  await write(Buffer.alloc((512 - (bytes % 512)) % 512));
  await write(Buffer.alloc(1024));
  out.end();
  await once(out, 'finish');
}

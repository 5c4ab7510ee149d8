import type Dockerode from 'dockerode';
import {
  type ArchiveEntry,
  decodePathStat,
  demuxDockerStream,
  type PathStat,
  readArchive,
} from './archive.js';

/**
 * The few calls smoke makes against a container, over the engine API (dockerode): stat, tar,
 * exec and logs. Nothing runs inside the image except `exec` assertions and readiness commands.
 */

/** The engine's status code on a failed call, if any. */
export function statusOf(err: unknown): number | undefined {
  const s = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

/** Stats a path in the container; null when it does not exist. Symlinks are not followed. */
export async function statPath(container: Dockerode.Container, p: string): Promise<PathStat | null> {
  try {
    const res = (await container.infoArchive({ path: p })) as unknown as {
      headers: Record<string, string | undefined>;
      resume?: () => void;
    };
    res.resume?.();
    const header = res.headers['x-docker-container-path-stat'];
    if (!header) throw new Error(`the engine sent no X-Docker-Container-Path-Stat header for ${p}`);
    return decodePathStat(header);
  } catch (err) {
    if (statusOf(err) === 404) return null;
    throw err;
  }
}

/** Stats a path, following symlinks (up to 8 hops) the way the agent opening it would. */
export async function statFollow(
  container: Dockerode.Container,
  p: string,
): Promise<{ stat: PathStat | null; resolved: string }> {
  let cur = p;
  for (let hop = 0; hop < 8; hop++) {
    const st = await statPath(container, cur);
    if (st?.type !== 'symlink') return { stat: st, resolved: cur };
    cur = st.linkTarget.startsWith('/')
      ? st.linkTarget
      : `${cur.slice(0, cur.lastIndexOf('/')) || ''}/${st.linkTarget}`;
  }
  return { stat: null, resolved: cur };
}

/** The entries of a container directory (relative to it); null when it does not exist. */
export async function archiveOf(container: Dockerode.Container, p: string): Promise<ArchiveEntry[] | null> {
  let stream: NodeJS.ReadableStream;
  try {
    stream = await container.getArchive({ path: p });
  } catch (err) {
    if (statusOf(err) === 404) return null;
    throw err;
  }
  return readArchive(stream);
}

/** The result of a command run in the container. */
export interface ExecOutcome {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv in the container and waits (at most `timeoutMs`) for its exit code. */
export async function execIn(
  container: Dockerode.Container,
  argv: readonly string[],
  options: { user?: string; timeoutMs: number },
): Promise<ExecOutcome> {
  const exec = await container.exec({
    Cmd: [...argv],
    AttachStdout: true,
    AttachStderr: true,
    ...(options.user ? { User: options.user } : {}),
  });
  const stream = await exec.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.destroy();
      reject(new Error(`"${argv.join(' ')}" did not finish within ${Math.round(options.timeoutMs / 1000)}s`));
    }, options.timeoutMs);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    stream.on('error', (e: Error) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  // The stream can end a moment before the engine records the exit code.
  let info = await exec.inspect();
  for (let i = 0; i < 20 && (info.Running || info.ExitCode === null); i++) {
    await new Promise((r) => setTimeout(r, 50));
    info = await exec.inspect();
  }
  const { stdout, stderr } = demuxDockerStream(Buffer.concat(chunks));
  return { exitCode: info.ExitCode ?? -1, stdout, stderr };
}

/** The container's log so far (stdout and stderr interleaved), as text. */
export async function logsOf(container: Dockerode.Container): Promise<string> {
  const buf = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  return demuxDockerStream(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf))).all;
}

/** The last `n` non-empty lines of a text. */
export function tailLines(text: string, n: number): string[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.length > 0)
    .slice(-n);
}

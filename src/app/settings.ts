import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { RunnerDescription } from '../attest/statement.js';
import { parseDuration } from '../core/timeouts.js';
import { type DockerConnection, dockerConnectionFromEnv } from '../engine/docker-connection.js';
import { DEFAULT_ENGINE_TIMEOUTS, type EngineTimeouts } from '../engine/image-engine.js';
import type { SourceTokens } from '../sources/index.js';

/**
 * Everything Slipway takes from its process: read once, here, at the edge. Library code below
 * `src/app` never looks at `process.env`; it is handed these values (or ports built from them).
 */
export interface Settings {
  /** Running in CI (`CI` set): strict verification, no smoke skips. */
  readonly ci: boolean;
  /** The pin store URL from `SLIPWAY_PIN_STORE`, if set. */
  readonly pinStoreUrl: string | undefined;
  /** OCI registry credentials (`SLIPWAY_REGISTRY_USERNAME` / `SLIPWAY_REGISTRY_PASSWORD`). */
  readonly registryCredentials: { readonly username?: string; readonly password?: string };
  /**
   * Credentials of the registry a promotion copies into (`--to-registry`):
   * `SLIPWAY_TARGET_REGISTRY_USERNAME` / `SLIPWAY_TARGET_REGISTRY_PASSWORD`. The source
   * registry's credentials are never sent to it.
   */
  readonly targetRegistryCredentials: { readonly username?: string; readonly password?: string };
  /** Tokens for template sources (`SLIPWAY_GIT_TOKEN`, `GITHUB_TOKEN`, `GITEA_TOKEN`). */
  readonly sourceTokens: SourceTokens;
  /**
   * How to reach the Docker engine, as the docker CLI would: `DOCKER_HOST` (with
   * `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`), else `DOCKER_CONTEXT` or the current context of the
   * CLI's config (`DOCKER_CONFIG`, default `~/.docker`), else the local socket.
   */
  readonly docker: DockerConnection;
  /** Actor candidates, most specific first: `SLIPWAY_ACTOR`, the CI actor, then `USER`. */
  readonly actors: readonly string[];
  /**
   * The environment itself, for what needs a whole one: git subprocesses (PATH, HOME), the AWS
   * SDK's credential and region chain, the template cache location.
   */
  readonly env: NodeJS.ProcessEnv;
  /** Every secret value the process holds, so output can be scrubbed of them. */
  readonly secrets: readonly string[];
  /** `SLIPWAY_TIMEOUT`, unparsed: the per-request limit for remote calls (the `--timeout` flag wins). */
  readonly timeout: string | undefined;
  /**
   * `SLIPWAY_ENGINE_IDLE_TIMEOUT`, unparsed: how long the Docker engine may stay silent during a
   * pull or push, and how long any other engine call may take (default 60s).
   */
  readonly engineIdleTimeout: string | undefined;
  /** `SLIPWAY_ENGINE_DEADLINE`, unparsed: how long one engine pull or push may take in all (default 30m). */
  readonly engineDeadline: string | undefined;
  /** `SLIPWAY_DEBUG`: show stack traces of unexpected errors. */
  readonly debug: boolean;
  /**
   * The attestation signing key: its PEM (`SLIPWAY_SIGNING_KEY`) or a file holding it
   * (`SLIPWAY_SIGNING_KEY_FILE`). Never printed; the PEM is among {@link Settings.secrets}.
   */
  readonly signingKey: { readonly pem: string } | { readonly file: string } | undefined;
  /** Where this process runs, as attestations record it: host, platform, CI system; no environment values. */
  readonly runner: RunnerDescription;
}

const SECRET_VARIABLES = [
  'GITHUB_TOKEN',
  'GITEA_TOKEN',
  'SLIPWAY_GIT_TOKEN',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'SLIPWAY_REGISTRY_PASSWORD',
  'SLIPWAY_SIGNING_KEY',
  'SLIPWAY_TARGET_REGISTRY_PASSWORD',
] as const;

/** Slipway's version, from its package.json. */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The CI system's name (not its variables), or null outside CI. */
function ciName(env: NodeJS.ProcessEnv): string | null {
  if (nonEmpty(env.GITEA_ACTIONS)) return 'gitea-actions';
  if (nonEmpty(env.GITHUB_ACTIONS)) return 'github-actions';
  if (nonEmpty(env.GITLAB_CI)) return 'gitlab-ci';
  return nonEmpty(env.CI) && env.CI !== 'false' ? 'ci' : null;
}

const nonEmpty = (v: string | undefined): string | undefined => (v?.trim() ? v : undefined);

/** Reads {@link Settings} from an environment (the CLI passes its own; tests pass a literal). */
export function readSettings(env: NodeJS.ProcessEnv): Settings {
  const username = nonEmpty(env.SLIPWAY_REGISTRY_USERNAME);
  const password = nonEmpty(env.SLIPWAY_REGISTRY_PASSWORD);
  const targetUsername = nonEmpty(env.SLIPWAY_TARGET_REGISTRY_USERNAME);
  const targetPassword = nonEmpty(env.SLIPWAY_TARGET_REGISTRY_PASSWORD);
  const git = nonEmpty(env.SLIPWAY_GIT_TOKEN);
  const github = nonEmpty(env.GITHUB_TOKEN);
  const gitea = nonEmpty(env.GITEA_TOKEN);
  return {
    ci: Boolean(nonEmpty(env.CI)) && env.CI !== 'false',
    pinStoreUrl: nonEmpty(env.SLIPWAY_PIN_STORE),
    registryCredentials: {
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
    },
    targetRegistryCredentials: {
      ...(targetUsername ? { username: targetUsername } : {}),
      ...(targetPassword ? { password: targetPassword } : {}),
    },
    sourceTokens: { ...(git ? { git } : {}), ...(github ? { github } : {}), ...(gitea ? { gitea } : {}) },
    docker: dockerConnectionFromEnv(env),
    actors: [env.SLIPWAY_ACTOR, env.GITHUB_ACTOR, env.GITEA_ACTOR, env.USER]
      .map((v) => v?.trim())
      .filter((v): v is string => Boolean(v)),
    env,
    secrets: SECRET_VARIABLES.map((k) => env[k]).filter((v): v is string => Boolean(v)),
    timeout: nonEmpty(env.SLIPWAY_TIMEOUT),
    engineIdleTimeout: nonEmpty(env.SLIPWAY_ENGINE_IDLE_TIMEOUT),
    engineDeadline: nonEmpty(env.SLIPWAY_ENGINE_DEADLINE),
    debug: Boolean(nonEmpty(env.SLIPWAY_DEBUG)),
    signingKey: nonEmpty(env.SLIPWAY_SIGNING_KEY)
      ? { pem: env.SLIPWAY_SIGNING_KEY as string }
      : nonEmpty(env.SLIPWAY_SIGNING_KEY_FILE)
        ? { file: env.SLIPWAY_SIGNING_KEY_FILE as string }
        : undefined,
    runner: {
      host: os.hostname(),
      platform: `${process.platform}/${process.arch}`,
      ci: ciName(env),
      slipway: packageVersion(),
    },
  };
}

/** The engine's time limits from the settings (a malformed duration is a USAGE error naming the variable). */
export function engineTimeoutsOf(settings: Settings): EngineTimeouts {
  const idle =
    settings.engineIdleTimeout === undefined
      ? {}
      : (() => {
          const ms = parseDuration(settings.engineIdleTimeout, 'SLIPWAY_ENGINE_IDLE_TIMEOUT');
          return { idleMs: ms, callMs: ms };
        })();
  const total =
    settings.engineDeadline === undefined
      ? {}
      : { totalMs: parseDuration(settings.engineDeadline, 'SLIPWAY_ENGINE_DEADLINE') };
  return { ...DEFAULT_ENGINE_TIMEOUTS, ...idle, ...total };
}

/** The embedded default pin store: `file:<manifest dir>/.slipway/pins.json`. */
export function defaultPinStoreUrl(manifestDir: string): string {
  return `file:${path.join(manifestDir, '.slipway', 'pins.json')}`;
}

/** The pin store a command uses: its flag, else `SLIPWAY_PIN_STORE`, else the embedded default. */
export function pinStoreUrlFor(settings: Settings, manifestDir: string, flag?: string): string {
  return nonEmpty(flag) ?? settings.pinStoreUrl ?? defaultPinStoreUrl(manifestDir);
}

const execFileAsync = promisify(execFile);

/** `git config user.name` (else `user.email`) in `dir`, or undefined when git has no identity there. */
async function gitUser(dir: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  for (const key of ['user.name', 'user.email']) {
    try {
      const { stdout } = await execFileAsync('git', ['config', '--get', key], {
        cwd: dir,
        env: { ...env },
        timeout: 5_000,
      });
      const v = stdout.trim();
      if (v) return v;
    } catch {
      // Not a repository, no git, or the key is unset: try the next source.
    }
  }
  return undefined;
}

/**
 * Who is acting, for audit records: `--by`, then `SLIPWAY_ACTOR`, the CI actor (`GITHUB_ACTOR`,
 * `GITEA_ACTOR`), `USER`, and last the git user of `dir`. Null when nobody can be named.
 */
export async function resolveActor(settings: Settings, dir: string, by?: string): Promise<string | null> {
  const explicit = nonEmpty(by)?.trim();
  if (explicit) return explicit;
  return settings.actors[0] ?? (await gitUser(dir, settings.env)) ?? null;
}

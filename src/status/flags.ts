import { LABELS, templateDigestLabel, templateRefLabel } from '../core/labels.js';
import type { ImageFacts, ImageStatus, LatestImage, StatusFlag, StatusReport } from './types.js';

/** What {@link evaluateStatus} needs besides the facts. */
export interface EvaluateOptions {
  readonly registry: string;
  readonly env: string;
  /** The moving tag compared against (`staging-latest`). */
  readonly tag: string;
  readonly pinStore: string;
  /** STALE when the moving tag's image is older than this many seconds. */
  readonly maxAgeSeconds: number | null;
  readonly now: Date;
}

const short = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

/** "3d", "5h", "12m" or "40s": how long ago, for reasons and tables. */
export function formatAge(seconds: number): string {
  if (seconds >= 2 * 86_400) return `${Math.floor(seconds / 86_400)}d`;
  if (seconds >= 2 * 3600) return `${Math.floor(seconds / 3600)}h`;
  if (seconds >= 120) return `${Math.floor(seconds / 60)}m`;
  return `${Math.max(0, Math.floor(seconds))}s`;
}

/** Why the moving tag's image is not what this manifest's release pushed, or null when it is. */
function notReleased(name: string, latest: LatestImage): string | null {
  const labelled = latest.labels[LABELS.image];
  if (labelled !== name) {
    return labelled === undefined
      ? `${latest.tag} (${short(latest.digest)}) carries no ${LABELS.image} label: it was not pushed by a release`
      : `${latest.tag} (${short(latest.digest)}) is labelled as image ${labelled}, not ${name}`;
  }
  if (latest.revision === null || latest.releaseTag === null) {
    return `${latest.tag} (${short(latest.digest)}) carries no source revision: it was not pushed by a release`;
  }
  if (latest.releaseDigest === null) {
    return `${latest.tag} names revision ${latest.revision.slice(0, 12)}, but ${latest.releaseTag} does not exist: it was not pushed by that release`;
  }
  if (latest.releaseDigest !== latest.digest) {
    return `${latest.tag} is ${short(latest.digest)}, but the release of ${latest.revision.slice(0, 12)} pushed ${short(latest.releaseDigest)} (${latest.releaseTag}): moved by hand`;
  }
  return null;
}

/** The inputs that differ between what the moving tag was built from and what the checkout would build. */
export function inputChanges(facts: ImageFacts, latest: LatestImage): string[] {
  const labels = latest.labels;
  const { current } = facts;
  if (labels[LABELS.contextDigest] === undefined || labels[LABELS.argsDigest] === undefined) {
    return [`${latest.tag} records no build inputs (built by an older slipway), so it cannot be compared`];
  }
  const changes: string[] = [];
  if (current.dockerfileDigest === null) changes.push('the Dockerfile cannot be read');
  else if (labels[LABELS.dockerfileDigest] !== current.dockerfileDigest)
    changes.push('the Dockerfile changed');
  if (current.contextDigest === null) changes.push('the build context cannot be read');
  else if (labels[LABELS.contextDigest] !== current.contextDigest) {
    // Staged templates are part of a context: unstaged ones change it without a real change.
    const unstaged = current.templates.some((t) => t.digest === null);
    changes.push(
      `the build context changed${unstaged ? ' (its templates are not staged here at their pins: run `slipway stage` first)' : ''}`,
    );
  }
  if (labels[LABELS.argsDigest] !== current.argsDigest) changes.push('the build args or target changed');
  const names = current.templates.map((t) => t.name);
  if ((labels[LABELS.templates] ?? '') !== names.join(',')) {
    changes.push(
      `the templates changed (${labels[LABELS.templates] || 'none'} -> ${names.join(',') || 'none'})`,
    );
  }
  for (const t of current.templates) {
    const builtRef = labels[templateRefLabel(t.name)] ?? null;
    if (builtRef !== t.ref) {
      changes.push(
        `template ${t.name} is pinned at ${t.ref?.slice(0, 12) ?? '(a local path)'}, built from ${builtRef?.slice(0, 12) ?? '(none)'}`,
      );
    } else if (t.digest !== null && labels[templateDigestLabel(t.name)] !== t.digest) {
      changes.push(`template ${t.name}'s staged content changed`);
    }
  }
  return changes;
}

/**
 * Raises the flags (pure): EMPTY, STALE (changed inputs, too old, or a stale base), DRIFT (a
 * moving tag not pushed by a release, or a pin elsewhere), DANGLING, UNVERIFIED. `facts` come
 * in build order, bases first, so a base's staleness reaches its dependents.
 */
export function evaluateStatus(facts: readonly ImageFacts[], o: EvaluateOptions): StatusReport {
  const images: ImageStatus[] = [];
  const unusable = new Map<string, string>();
  const releaseHint = `run the release for ${o.env} (slipway release --env ${o.env}) so every manifest image is rebuilt, pushed and smoked`;
  for (const f of facts) {
    const flags: StatusFlag[] = [];
    const flag = (kind: StatusFlag['kind'], subject: string, reason: string, hint: string) =>
      flags.push({ kind, image: f.name, subject, reason, hint });
    const repo = f.repository;
    const latest = f.latest;
    let changes: string[] = [];
    if (!repo.exists) {
      flag('EMPTY', 'repository', `repository ${repo.name} does not exist`, releaseHint);
    } else if (repo.imageCount === 0) {
      flag('EMPTY', 'repository', `repository ${repo.name} holds no image`, releaseHint);
    } else if (latest === null) {
      flag('EMPTY', o.tag, `${repo.name} has no ${o.tag}`, releaseHint);
    }
    if (latest !== null) {
      const foreign = notReleased(f.name, latest);
      if (foreign !== null) {
        flag(
          'DRIFT',
          latest.tag,
          foreign,
          `release again, or point ${latest.tag} back at the release's image: slipway tag ${repo.name}:<${o.env}-sha tag> ${repo.name}:${latest.tag}`,
        );
      } else {
        changes = inputChanges(f, latest);
      }
      const base = f.current.base;
      const baseFacts = base === null ? undefined : facts.find((b) => b.name === base);
      const baseProblem = base === null ? undefined : unusable.get(base);
      if (base !== null && baseProblem !== undefined) {
        changes.push(`its base ${base} ${baseProblem}`);
      } else if (base !== null && foreign === null && baseFacts?.latest?.configDigest) {
        const builtOn = latest.labels[LABELS.baseDigest];
        if (builtOn !== baseFacts.latest.configDigest) {
          changes.push(
            `built on ${builtOn ? short(builtOn) : 'an unrecorded base'}, but ${base}'s ${o.tag} is ${short(baseFacts.latest.configDigest)}`,
          );
        }
      }
      const stale = [...changes];
      const built = latest.created ?? latest.pushedAt;
      if (o.maxAgeSeconds !== null && built !== null) {
        const age = (o.now.getTime() - Date.parse(built)) / 1000;
        if (age > o.maxAgeSeconds) {
          stale.push(`built ${formatAge(age)} ago, more than --max-age ${formatAge(o.maxAgeSeconds)}`);
        }
      }
      if (stale.length > 0) {
        flag(
          'STALE',
          latest.tag,
          `${latest.tag} (rev ${latest.revision?.slice(0, 12) ?? 'unknown'}) is not what this checkout builds: ${stale.join('; ')}`,
          releaseHint,
        );
      }
      if (!latest.smoke.passed) {
        flag(
          'UNVERIFIED',
          latest.tag,
          `${latest.tag}: ${latest.smoke.message}`,
          `smoke it: slipway smoke ${f.name} --ref ${repo.name}@${latest.digest}`,
        );
      }
    }
    for (const p of f.pins) {
      if (p.pinned === null) continue;
      const subject = `pin ${p.runtime}`;
      const promoteHint = `promote the verified ${o.tag}: slipway pins promote ${p.runtime} ${repo.name}:${o.tag}`;
      if (p.resolves === false) {
        flag(
          'DANGLING',
          subject,
          `${p.runtime} is pinned to ${p.pinned.image}, which no longer resolves in the registry`,
          promoteHint,
        );
      }
      if (latest !== null && p.pinned.digest !== latest.digest) {
        flag(
          'DRIFT',
          subject,
          `${p.runtime} is pinned to ${short(p.pinned.digest)}, ${o.tag} is ${short(latest.digest)}`,
          `${promoteHint} (or, if the pin is right, find out why ${o.tag} moved)`,
        );
      }
      if (p.smoke !== null && !p.smoke.passed) {
        flag(
          'UNVERIFIED',
          subject,
          `${p.runtime}: ${p.smoke.message}${p.pinned.forced ? ` (promoted with --force by ${p.pinned.updatedBy})` : ''}`,
          `smoke it (slipway smoke ${f.name} --ref ${p.pinned.image}) or ${promoteHint}`,
        );
      }
    }
    if (flags.some((x) => x.kind === 'EMPTY')) unusable.set(f.name, `has no ${o.tag}`);
    else if (flags.some((x) => x.kind === 'STALE' && x.subject === o.tag)) unusable.set(f.name, 'is stale');
    images.push({ ...f, changes, flags });
  }
  const flags = images.flatMap((i) => i.flags);
  return {
    version: 1,
    registry: o.registry,
    env: o.env,
    tag: o.tag,
    pinStore: o.pinStore,
    checkedAt: o.now.toISOString(),
    maxAgeSeconds: o.maxAgeSeconds,
    images,
    flags,
    ok: flags.length === 0,
  };
}

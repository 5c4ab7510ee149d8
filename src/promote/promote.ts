import type { KeyObject } from 'node:crypto';
import type { AttestationStore } from '../attest/store.js';
import { type AttestationGateReason, attestationGate } from '../attest/verify.js';
import { SlipwayError } from '../core/errors.js';
import { type EventSink, silentSink } from '../core/events.js';
import { ImageRef } from '../core/image-ref.js';
import type { Registry } from '../publish/registry.js';
import type { PinHistoryEntry, PinRecord, PinStore, SmokeRecord } from './pin-store.js';
import { pinConflict } from './pin-store-errors.js';

/**
 * Promotion: moving a runtime pin to a verified image digest. {@link planPromotion} is pure (the
 * current pin, the target and the smoke records in; a versioned plan out); {@link promote} and
 * {@link rollback} read the inputs through the ports, plan, and apply the plan with one
 * compare-and-set.
 */

/** The smoke gate's verdict on a digest. */
export interface SmokeGateResult {
  /** True when the newest smoke record for this repository and digest passed. */
  readonly passed: boolean;
  /** The record the verdict rests on (null: the digest was never smoked). */
  readonly record: SmokeRecord | null;
  readonly message: string;
  /** Where the verdict comes from: the pin store's smoke records, or a registry attestation. */
  readonly source?: 'pin-store' | 'registry';
  /** Why the registry's attestations did not pass (missing, failed, wrong-key, unsigned). */
  readonly reason?: AttestationGateReason | null;
}

/** The image a plan pins. */
export interface PromotionTarget {
  /** `name@digest`: what the pin stores. */
  readonly image: string;
  /** Repository name with registry, e.g. `127.0.0.1:5000/molecule-ai/molecule-platform-agent`. */
  readonly name: string;
  readonly digest: string;
  /** The tag the digest was resolved from (informational). */
  readonly tag: string | null;
}

/** A planned pin move (versioned JSON, printed by `--dry-run --json`). */
export interface PromotionPlan {
  readonly version: 1;
  readonly kind: 'promote' | 'rollback';
  readonly runtime: string;
  /** The current pin (null: the runtime has none yet). */
  readonly from: { readonly image: string; readonly digest: string | null } | null;
  readonly to: PromotionTarget;
  /** The digest the compare-and-set requires to be current (null: no pin). */
  readonly expect: string | null;
  /** True when `expect` is not the current digest: applying would be a PIN_CONFLICT. */
  readonly conflict: boolean;
  /** True when the pin already names the target digest: nothing to write. */
  readonly noop: boolean;
  /** True when the smoke gate is overridden (only with a reason). */
  readonly forced: boolean;
  readonly reason: string | null;
  readonly by: string;
  readonly gate: SmokeGateResult;
  /** True when applying the plan is allowed (gate passed, forced, or a no-op). */
  readonly allowed: boolean;
}

/** Inputs of {@link planPromotion}. */
export interface PlanPromotionInput {
  readonly runtime: string;
  readonly current: PinRecord | null;
  /** The target, pinned by digest. */
  readonly target: ImageRef;
  readonly tag?: string | null;
  /** Smoke records for the target digest (any order). */
  readonly smokeRecords: readonly SmokeRecord[];
  /** The digest the pin must hold (default: the current one). */
  readonly expect?: string | null;
  readonly force?: boolean;
  readonly reason?: string;
  readonly by: string;
  readonly kind?: 'promote' | 'rollback';
  /** The verdict of the registry's smoke attestations, consulted when the records do not pass. */
  readonly registryGate?: SmokeGateResult;
}

/** The smoke gate: the newest record for the target's repository and digest must have passed. */
export function smokeGate(target: ImageRef, records: readonly SmokeRecord[]): SmokeGateResult {
  const ref = `${target.name}@${target.digest}`;
  // Newest first; a failed run after a pass means something changed, so it wins (fail closed).
  const mine = records
    .filter((r) => r.digest === target.digest && r.repository === target.name)
    .sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
  const record = mine[0] ?? null;
  if (!record) return { passed: false, record: null, message: `${ref} has no smoke record` };
  if (!record.passed)
    return { passed: false, record, message: `the newest smoke run of ${ref} failed (${record.summary})` };
  return { passed: true, record, message: `smoke passed at ${record.at} (${record.summary})` };
}

/**
 * The pin store's verdict and the registry's, as one: the newest verdict wins (a failure after
 * a pass fails closed); with neither passing, the message says what each one lacks.
 */
export function combineGates(local: SmokeGateResult, registry: SmokeGateResult | undefined): SmokeGateResult {
  // Without a registry verdict the gate reads as it always has.
  if (!registry) return local;
  const mine: SmokeGateResult = { ...local, source: 'pin-store' };
  const theirs: SmokeGateResult = { ...registry, source: 'registry' };
  if (local.record && registry.record) {
    if (registry.record.at > local.record.at) return theirs;
    if (local.record.at > registry.record.at) return mine;
    return local.passed ? theirs : mine;
  }
  if (local.passed) return mine;
  if (registry.passed) return theirs;
  return {
    passed: false,
    record: local.record ?? registry.record,
    message: `${local.message}, and ${registry.message}`,
    source: local.record ? 'pin-store' : 'registry',
    reason: registry.reason ?? null,
  };
}

/** Plans a pin move. Pure; throws USAGE for a target without digest or `force` without a reason. */
export function planPromotion(input: PlanPromotionInput): PromotionPlan {
  const digest = input.target.digest;
  if (digest === undefined) {
    throw new SlipwayError(
      'USAGE',
      `cannot plan a promotion to ${input.target.toString()}: not pinned by digest`,
      {
        hint: 'resolve the tag to a digest first (promote does this with a registry)',
      },
    );
  }
  const reason = input.reason?.trim() ? input.reason.trim() : null;
  const force = input.force === true;
  if (force && reason === null) {
    throw new SlipwayError('USAGE', `--force on ${input.runtime} needs a --reason: an override is audited`, {
      hint: 'add --reason "why this digest may skip the smoke gate"',
    });
  }
  // A control-plane row without a digest (a tag pin) compares as "no digest".
  const currentDigest = input.current ? input.current.digest || null : null;
  const expect = input.expect !== undefined ? input.expect : currentDigest;
  const gate = combineGates(smokeGate(input.target, input.smokeRecords), input.registryGate);
  const noop = currentDigest === digest;
  return {
    version: 1,
    kind: input.kind ?? 'promote',
    runtime: input.runtime,
    from: input.current ? { image: input.current.image, digest: currentDigest } : null,
    to: {
      image: `${input.target.name}@${digest}`,
      name: input.target.name,
      digest,
      tag: input.tag ?? input.target.tag ?? null,
    },
    expect,
    conflict: expect !== currentDigest,
    noop,
    forced: force && !gate.passed && !noop,
    reason,
    by: input.by,
    gate,
    allowed: noop || gate.passed || force,
  };
}

/** What {@link promote} and {@link rollback} did. */
export interface PromotionResult {
  readonly plan: PromotionPlan;
  /** True when the pin moved. */
  readonly applied: boolean;
  readonly dryRun: boolean;
  /** The pin after the call (unchanged on a no-op or a dry run). */
  readonly pin: PinRecord | null;
  /** The registry tag moved to the digest by `retag`, if any. */
  readonly retagged: string | null;
}

/** Options of {@link promote}. */
export interface PromoteOptions {
  readonly runtime: string;
  /** `name@digest`, or `name:tag` (resolved through `registry`). */
  readonly ref: ImageRef | string;
  /** Resolves a tag to a digest and moves `retag`; needed only for those. */
  readonly registry?: Registry;
  /**
   * The manifest repository of the runtime's image (`molecule-ai/molecule-platform-agent`). When
   * given, a ref naming another repository is refused: identity is never inferred from a name.
   */
  readonly repository?: string;
  /** The manifest image name, for hints (`slipway smoke <image> …`). */
  readonly imageName?: string;
  /** Required current digest (`--expect`; null: no pin yet). Default: the digest read at the start. */
  readonly expect?: string | null;
  /** Override the smoke gate; requires `reason`. */
  readonly force?: boolean;
  readonly reason?: string;
  readonly by: string;
  /** Plan only: return the change, write nothing. */
  readonly dryRun?: boolean;
  /** A registry tag moved to the promoted digest after the pin moved. */
  readonly retag?: string;
  readonly sink?: EventSink;
  /**
   * The registry's attestations, read when the pin store has no passing smoke record for the
   * digest; with `keys`, only an attestation signed by one of them counts.
   */
  readonly attestations?: AttestationPolicy;
}

/** Where the smoke gate finds registry attestations, and which keys it trusts. */
export interface AttestationPolicy {
  readonly store: AttestationStore;
  /** The repository (in the store's registry) of the image. */
  readonly repository: string;
  /** Public keys an attestation must verify with; empty: any attestation counts. */
  readonly keys: readonly KeyObject[];
}

/** The repository path to pass to the registry for `ref` (the registry may add a host and prefix). */
export function registryRepository(registry: Registry, ref: ImageRef): string {
  if (ref.registry === undefined) return ref.repository;
  const repository = registry.repositoryOf(ref);
  if (repository !== null) return repository;
  throw new SlipwayError('USAGE', `${ref.toString()} is not in registry ${registry.url}`, {
    resource: ref.toString(),
    hint: `use a reference under ${registry.imageName('repository').name.replace(/repository$/, '')}, or pass the matching --registry`,
  });
}

function checkRepository(ref: ImageRef, options: PromoteOptions): void {
  const repo = options.repository;
  if (repo === undefined) return;
  const ok = options.registry
    ? ref.registry === undefined
      ? ref.repository === repo
      : options.registry.imageName(repo).name === ref.name
    : ref.repository === repo || ref.repository.endsWith(`/${repo}`);
  if (!ok) {
    throw new SlipwayError(
      'USAGE',
      `${ref.toString()} is not an image of runtime ${options.runtime}: its image${options.imageName ? ` ${options.imageName}` : ''} is pushed to ${options.registry ? options.registry.imageName(repo).name : repo}`,
      {
        resource: ref.toString(),
        hint: `promote a digest of ${repo}; runtime, image and template are distinct entities (check the manifest's pins.${options.runtime}.image)`,
      },
    );
  }
}

/** Resolves the ref to a pinned ImageRef (a tag through the registry) and the tag it came from. */
async function resolveTarget(options: PromoteOptions): Promise<{ target: ImageRef; tag: string | null }> {
  const ref = typeof options.ref === 'string' ? ImageRef.parse(options.ref) : options.ref;
  checkRepository(ref, options);
  const registry = options.registry;
  const full =
    registry && ref.registry === undefined ? registry.imageName(ref.repository) : ImageRef.parse(ref.name);
  if (ref.digest !== undefined) return { target: full.withDigest(ref.digest), tag: ref.tag ?? null };
  const tag = ref.tag ?? 'latest';
  if (!registry) {
    throw new SlipwayError('USAGE', `${ref.toString()} is a tag: resolving it needs a registry`, {
      resource: ref.toString(),
      hint: 'pass --registry URL (or set publish.registry in the manifest), or promote name@sha256:<digest>',
    });
  }
  const digest = await registry.resolve(registryRepository(registry, full), tag);
  if (digest === null) {
    throw new SlipwayError('REGISTRY_ERROR', `tag ${full.name}:${tag} does not exist in ${registry.url}`, {
      resource: `${full.name}:${tag}`,
      hint: 'check the tag (slipway push prints the tags it pushed), or promote a digest',
    });
  }
  return { target: full.withDigest(digest), tag };
}

interface ApplyOptions {
  readonly store: PinStore;
  readonly plan: PromotionPlan;
  readonly imageName?: string;
  readonly dryRun?: boolean;
  readonly registry?: Registry;
  readonly retag?: string;
  readonly sink: EventSink;
}

async function applyPlan(o: ApplyOptions): Promise<PromotionResult> {
  const { plan, sink } = o;
  const subject = plan.runtime;
  const fromText = plan.from?.digest ?? '(no pin)';
  if (plan.conflict) {
    throw pinConflict(plan.runtime, plan.expect, plan.from?.digest ?? null, o.store.description);
  }
  if (!plan.allowed) {
    const smokeImage = o.imageName ?? '<image>';
    throw new SlipwayError(
      'GATE_REFUSED',
      `refusing to pin ${plan.runtime} to ${plan.to.image}: ${plan.gate.message}; only a digest that passed smoke can be promoted`,
      {
        resource: plan.to.image,
        hint: `smoke it first: slipway smoke ${smokeImage} --ref ${plan.to.image} (or override, audited: --force --reason TEXT)`,
      },
    );
  }
  if (o.dryRun) {
    sink({
      kind: 'log',
      stage: 'pins',
      level: 'info',
      subject,
      message: plan.noop
        ? `dry run: already at ${plan.to.digest}, nothing to change`
        : `dry run: would ${plan.kind} ${fromText} -> ${plan.to.digest}`,
    });
    return { plan, applied: false, dryRun: true, pin: null, retagged: null };
  }
  let pin: PinRecord | null = null;
  if (plan.noop) {
    sink({
      kind: 'step-done',
      stage: 'pins',
      subject,
      message: `already at ${plan.to.digest}`,
      skipped: true,
    });
  } else {
    if (plan.forced) {
      sink({
        kind: 'log',
        stage: 'pins',
        level: 'warn',
        subject,
        message: `smoke gate overridden (${plan.gate.message}); reason: ${plan.reason}`,
      });
    }
    sink({
      kind: 'step-start',
      stage: 'pins',
      subject,
      message: `${plan.kind} ${fromText} -> ${plan.to.digest}`,
    });
    pin = await o.store.compareAndSet(plan.expect, {
      runtime: plan.runtime,
      image: plan.to.image,
      digest: plan.to.digest,
      tag: plan.to.tag,
      by: plan.by,
      reason: plan.reason,
      forced: plan.forced,
      kind: plan.kind,
    });
    sink({ kind: 'step-done', stage: 'pins', subject, message: `pinned ${plan.to.image}` });
  }
  let retagged: string | null = null;
  if (o.retag !== undefined) {
    // After the pin moved, never before: the pin is what the control plane boots, and a tag
    // moved first would point at an image the pin may never reach (a lost compare-and-set or
    // a refused gate). A retag that fails after the pin moved is repaired by rerunning the
    // same promotion: it is a no-op on the pin and moves the tag again.
    if (!o.registry) {
      throw new SlipwayError('USAGE', `--retag ${o.retag} needs a registry`, { hint: 'pass --registry URL' });
    }
    const ref = ImageRef.parse(plan.to.image);
    try {
      await o.registry.putTag(registryRepository(o.registry, ref), plan.to.digest, o.retag);
    } catch (err) {
      if (err instanceof SlipwayError && !plan.noop) {
        throw new SlipwayError(
          err.code,
          `${err.message} (the pin of ${plan.runtime} did move to ${plan.to.digest}; only the tag did not)`,
          {
            ...(err.resource === undefined ? {} : { resource: err.resource }),
            hint: 'rerun the same promotion with --retag: the pin is a no-op and the tag moves',
            cause: err,
          },
        );
      }
      throw err;
    }
    retagged = `${ref.name}:${o.retag}`;
    sink({ kind: 'step-done', stage: 'pins', subject, message: `tagged ${retagged} -> ${plan.to.digest}` });
  }
  return {
    plan,
    applied: pin !== null,
    dryRun: false,
    pin: pin ?? (await o.store.getPin(plan.runtime)),
    retagged,
  };
}

/**
 * Promotes a runtime to an image: resolves a tag to a digest first, refuses a digest without a
 * passing smoke record (GATE_REFUSED) unless forced with a reason, and moves the pin by
 * compare-and-set against `expect` or the digest read at the start (PIN_CONFLICT for the loser).
 */
export async function promote(store: PinStore, options: PromoteOptions): Promise<PromotionResult> {
  const { target, tag } = await resolveTarget(options);
  return gatedMove(store, options, target, tag, 'promote');
}

/** Options of {@link rollback}. */
export interface RollbackOptions {
  readonly runtime: string;
  /** A history entry id: roll back to the digest that entry pinned. Default: the pin before the newest change. */
  readonly to?: number;
  readonly by: string;
  readonly reason?: string;
  readonly force?: boolean;
  readonly dryRun?: boolean;
  readonly expect?: string | null;
  readonly imageName?: string;
  readonly sink?: EventSink;
}

/** The image a rollback returns to, chosen from the history (newest first). */
export function rollbackTarget(
  runtime: string,
  history: readonly PinHistoryEntry[],
  to?: number,
): { image: string; tag: string | null; entry: PinHistoryEntry } {
  if (to !== undefined) {
    const entry = history.find((h) => h.id === to);
    if (!entry) {
      throw new SlipwayError('PIN_NOT_FOUND', `history entry ${to} is not in the history of ${runtime}`, {
        resource: runtime,
        hint: `list the entries with \`slipway pins history ${runtime}\``,
      });
    }
    return { image: entry.image, tag: entry.tag, entry };
  }
  const newest = history[0];
  if (!newest) {
    throw new SlipwayError('PIN_NOT_FOUND', `${runtime} has no pin history to roll back`, {
      resource: runtime,
      hint: `promote an image first: slipway pins promote ${runtime} IMAGE_REF`,
    });
  }
  const previous = newest.fromDigest;
  if (previous === null) {
    throw new SlipwayError(
      'PIN_NOT_FOUND',
      `${runtime} has no previous pin: entry ${newest.id} was its first`,
      {
        resource: runtime,
        hint: `promote the image you want instead: slipway pins promote ${runtime} IMAGE_REF`,
      },
    );
  }
  // The entry that pinned the previous digest knows its full reference; fall back to the
  // newest entry's repository when the history starts later (e.g. a control-plane row).
  const source = history.find((h) => h.id < newest.id && h.toDigest === previous);
  if (source) return { image: source.image, tag: source.tag, entry: newest };
  const name = ImageRef.parse(newest.image).name;
  return { image: `${name}@${previous}`, tag: null, entry: newest };
}

/** Rolls a runtime back (to the previous pin, or to history entry `to`): a recorded, gated promotion. */
export async function rollback(store: PinStore, options: RollbackOptions): Promise<PromotionResult> {
  const history = await store.history(options.runtime);
  const { image, tag } = rollbackTarget(options.runtime, history, options.to);
  return gatedMove(store, options, ImageRef.parse(image), tag, 'rollback');
}

/** What promote and rollback share: read the pin and the target's smoke records, plan, apply. */
async function gatedMove(
  store: PinStore,
  options: Pick<
    PromoteOptions,
    'runtime' | 'expect' | 'force' | 'reason' | 'by' | 'imageName' | 'dryRun' | 'sink'
  > &
    Partial<Pick<PromoteOptions, 'registry' | 'retag' | 'attestations'>>,
  target: ImageRef,
  tag: string | null,
  kind: 'promote' | 'rollback',
): Promise<PromotionResult> {
  const [current, smokeRecords] = await Promise.all([
    store.getPin(options.runtime),
    store.smokeRecords(target.digest ?? ''),
  ]);
  const policy = options.attestations;
  const digest = target.digest ?? '';
  const registryGate =
    policy && digest && !smokeGate(target, smokeRecords).passed
      ? attestationGate(digest, await policy.store.list(policy.repository, digest), policy.keys)
      : undefined;
  const plan = planPromotion({
    runtime: options.runtime,
    current,
    target,
    tag,
    smokeRecords,
    ...(registryGate === undefined ? {} : { registryGate }),
    ...(options.expect === undefined ? {} : { expect: options.expect }),
    ...(options.force === undefined ? {} : { force: options.force }),
    ...(options.reason === undefined ? {} : { reason: options.reason }),
    by: options.by,
    kind,
  });
  return applyPlan({
    store,
    plan,
    sink: options.sink ?? silentSink,
    ...(options.imageName === undefined ? {} : { imageName: options.imageName }),
    ...(options.dryRun === undefined ? {} : { dryRun: options.dryRun }),
    ...(options.registry === undefined ? {} : { registry: options.registry }),
    ...(options.retag === undefined ? {} : { retag: options.retag }),
  });
}

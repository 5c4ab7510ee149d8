import { createRequire } from 'node:module';
import type { create as Create } from 'xmlbuilder2';
import { type SmokeReport, showValue } from './report.js';

// XML 1.0 forbids most control characters; container logs carry ANSI colours and worse.
const ANSI = new RegExp(`${String.fromCharCode(0x1b)}\\[[0-9;]*[A-Za-z]`, 'g');

function xmlChar(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Text made safe for an XML 1.0 document (ANSI colours dropped, other forbidden characters replaced). */
export function xmlSafe(text: string): string {
  let out = '';
  for (const ch of text.replace(ANSI, '')) out += xmlChar(ch.codePointAt(0) ?? 0) ? ch : '\uFFFD';
  return out;
}

// xmlbuilder2 (CommonJS) loads when a report is first rendered, not when the CLI starts.
const requireHere = createRequire(import.meta.url);
let xmlCreate: typeof Create | undefined;
function xmlbuilder(): { create: typeof Create } {
  xmlCreate ??= (requireHere('xmlbuilder2') as { create: typeof Create }).create;
  return { create: xmlCreate };
}

/** The name of the single testcase a run gets when it failed (or skipped) before any assertion. */
export const BOOT_TESTCASE = 'boot and readiness';

/**
 * The report as JUnit XML for CI test reporters: one testsuite per image, one testcase per
 * assertion (a `<failure>` carrying the message, expected and observed), or a single failing
 * (or skipped) testcase when the run ended before its assertions.
 */
export function toJUnitXml(report: SmokeReport): string {
  const classname = `slipway.smoke.${report.imageName}`;
  const seconds = (report.durationMs / 1000).toFixed(3);
  const before = report.assertions.length === 0;
  const failures = before
    ? report.passed || report.skipped
      ? 0
      : 1
    : report.assertions.filter((a) => !a.passed).length;
  const tests = before ? 1 : report.assertions.length;

  const root = xmlbuilder().create({ version: '1.0', encoding: 'UTF-8' }).ele('testsuites', {
    name: 'slipway smoke',
    tests,
    failures,
    errors: 0,
    time: seconds,
  });
  const suite = root.ele('testsuite', {
    name: `smoke ${report.imageName}`,
    tests,
    failures,
    errors: 0,
    skipped: report.skipped ? 1 : 0,
    timestamp: report.startedAt,
    time: seconds,
  });
  const props = suite.ele('properties');
  props.ele('property', { name: 'image', value: report.image });
  props.ele('property', { name: 'digest', value: report.digest ?? '' });
  props.ele('property', { name: 'specDigest', value: report.specDigest });
  props.ele('property', { name: 'runId', value: report.evidence.runId });

  if (before) {
    const tc = suite.ele('testcase', { classname, name: BOOT_TESTCASE, time: seconds });
    if (report.skipped) tc.ele('skipped', { message: report.failure?.message ?? 'no smoke spec' });
    else if (!report.passed) {
      tc.ele('failure', {
        message: xmlSafe(report.failure?.message ?? 'smoke failed'),
        type: report.failure?.code ?? 'failed',
      }).txt(xmlSafe(report.evidence.logTail.join('\n')));
    }
  } else {
    for (const a of report.assertions) {
      const tc = suite.ele('testcase', { classname, name: xmlSafe(a.name), time: '0' });
      if (!a.passed) {
        const body = [
          ...(a.expected === undefined ? [] : [`expected: ${showValue(a.expected)}`]),
          `observed: ${showValue(a.observed)}`,
        ].join('\n');
        tc.ele('failure', { message: xmlSafe(a.message), type: a.kind }).txt(xmlSafe(body));
      }
    }
  }
  if (report.evidence.logTail.length > 0)
    suite.ele('system-out').txt(xmlSafe(report.evidence.logTail.join('\n')));
  return root.end({ prettyPrint: true });
}

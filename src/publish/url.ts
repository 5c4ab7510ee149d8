import { SlipwayError } from '../core/errors.js';
import { REPOSITORY_RE } from '../core/image-ref.js';
import { redactText } from '../core/redact.js';

/** A parsed `--registry` URL. */
export type RegistryUrl =
  | { readonly kind: 'oci'; readonly host: string; readonly prefix: string; readonly url: string }
  | {
      readonly kind: 'ecr';
      readonly account: string;
      readonly region: string;
      readonly host: string;
      readonly url: string;
    };

const ECR_HOST = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;
const HOST_PORT =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?$/;

/** Parses `oci://host[:port][/prefix]` or `ecr://<account>.dkr.ecr.<region>.amazonaws.com`; USAGE error otherwise. */
export function parseRegistryUrl(input: string): RegistryUrl {
  const shown = redactText(input);
  const fail = (problem: string): never => {
    throw new SlipwayError('USAGE', `invalid registry URL "${shown}": ${problem}`, {
      resource: shown,
      hint: 'use ecr://<account>.dkr.ecr.<region>.amazonaws.com or oci://host[:port][/prefix]',
    });
  };
  const m = /^(oci|ecr):\/\/([^/?#]+)(\/[^?#]*)?$/.exec(input.trim());
  if (!m) return fail('expected ecr:// or oci:// followed by a host');
  const [, scheme, host = '', rawPath = ''] = m;
  if (host.includes('@'))
    fail('credentials do not belong in the URL; use SLIPWAY_REGISTRY_USERNAME/PASSWORD');
  if (!HOST_PORT.test(host)) fail(`"${host}" is not a host[:port]`);
  const prefix = rawPath.replace(/^\/+|\/+$/g, '');
  if (scheme === 'ecr') {
    const e = ECR_HOST.exec(host);
    if (!e) return fail('an ECR host is <12-digit account>.dkr.ecr.<region>.amazonaws.com');
    if (prefix !== '') fail('ECR URLs take no path');
    return { kind: 'ecr', account: e[1] ?? '', region: e[2] ?? '', host, url: `ecr://${host}` };
  }
  if (prefix !== '' && !REPOSITORY_RE.test(prefix)) {
    fail(`prefix "${prefix}" must be lowercase path components like a repository`);
  }
  return { kind: 'oci', host, prefix, url: `oci://${host}${prefix ? `/${prefix}` : ''}` };
}

/** True for hosts the Docker engine and Slipway talk to over plain http (loopback and `localhost`). */
export function isLoopbackHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '[::1]';
}

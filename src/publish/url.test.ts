import { describe, expect, it } from 'vitest';
import { isSlipwayError } from '../core/errors.js';
import { isLoopbackHost, parseRegistryUrl } from './url.js';

describe('parseRegistryUrl', () => {
  it('parses ECR URLs into account, region and host', () => {
    expect(parseRegistryUrl('ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com')).toEqual({
      kind: 'ecr',
      account: '123456789012',
      region: 'eu-west-1',
      host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      url: 'ecr://123456789012.dkr.ecr.eu-west-1.amazonaws.com',
    });
  });

  it('parses OCI URLs with and without a prefix, normalising slashes', () => {
    expect(parseRegistryUrl('oci://127.0.0.1:5000/team/ci/')).toEqual({
      kind: 'oci',
      host: '127.0.0.1:5000',
      prefix: 'team/ci',
      url: 'oci://127.0.0.1:5000/team/ci',
    });
    expect(parseRegistryUrl('oci://ghcr.io')).toEqual({
      kind: 'oci',
      host: 'ghcr.io',
      prefix: '',
      url: 'oci://ghcr.io',
    });
  });

  it.each([
    ['https://ghcr.io', 'expected ecr:// or oci://'],
    ['oci://user:pw@ghcr.io/x', 'credentials do not belong in the URL'],
    ['ecr://ghcr.io', 'an ECR host is'],
    ['ecr://123456789012.dkr.ecr.us-east-1.amazonaws.com/prefix', 'ECR URLs take no path'],
    ['oci://ghcr.io/Upper', 'prefix "Upper" must be lowercase'],
  ])('refuses %s as a usage error naming the problem', (input, problem) => {
    let caught: unknown;
    try {
      parseRegistryUrl(input);
    } catch (err) {
      caught = err;
    }
    expect(isSlipwayError(caught, 'USAGE')).toBe(true);
    expect((caught as Error).message).toContain(problem);
    // A URL with credentials must not echo them back.
    expect((caught as Error).message).not.toContain('user:pw');
  });
});

describe('isLoopbackHost', () => {
  it('is true for loopback addresses and localhost only', () => {
    expect(['127.0.0.1:5000', 'localhost', 'localhost:80', '127.1.2.3', '[::1]'].map(isLoopbackHost)).toEqual(
      [true, true, true, true, true],
    );
    expect(['ghcr.io', '10.0.0.1:5000', 'localhost.example.com'].map(isLoopbackHost)).toEqual([
      false,
      false,
      false,
    ]);
  });
});

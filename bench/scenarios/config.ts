/** What every scenario group needs to know about the machine and this run. */
export interface BenchConfig {
  /** The repository root (holds manifest.json). */
  readonly repo: string;
  /** Random hex naming this run's registry repositories and local tags. */
  readonly runId: string;
  /** host:port of the local OCI registry. */
  readonly registryAddr: string;
  /** The local root image every test image builds FROM. */
  readonly rootImage: string;
  /** `git rev-parse HEAD` of the repository. */
  readonly sha: string;
}

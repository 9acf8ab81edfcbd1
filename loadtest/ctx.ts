/** What the runner hands every scenario: its dirs, the built client, a log, and a place for notes. */
export interface Ctx {
  /** Per-run temp dir (configs, NVMe dirs, logs); removed at the end. */
  readonly workDir: string;
  /** The fs origin root shared by every server (fixtures live here). */
  readonly originRoot: string;
  readonly clientBin: string;
  readonly notes: string[];
  log(msg: string): void;
}

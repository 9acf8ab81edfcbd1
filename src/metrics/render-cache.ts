/**
 * The rendered /metrics page, reused for a short interval. Rendering walks
 * every metric (histograms, prom-client's process metrics) and costs
 * milliseconds of the one JavaScript thread; a flood of scrapes must not
 * turn into a flood of renders. Scrapes within `maxAgeMs` of a render get its
 * text, and scrapes that arrive while a render runs wait for that render.
 * Prometheus scrapes every 10–60 s, so a 1 s page is as fresh as it can see.
 */
export class RenderCache {
  private page: { readonly text: string; readonly at: number } | undefined;
  private rendering: Promise<string> | undefined;

  constructor(
    private readonly render: () => Promise<string>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get(): Promise<string> {
    if (this.page && this.now() - this.page.at < this.maxAgeMs) return Promise.resolve(this.page.text);
    this.rendering ??= this.render()
      .then((text) => {
        this.page = { text, at: this.now() };
        return text;
      })
      .finally(() => {
        this.rendering = undefined;
      });
    return this.rendering;
  }
}

/** Retries `check` until it stops throwing or `ms` pass (for effects that land asynchronously, like the message writer). */
export async function eventually<T>(check: () => Promise<T> | T, ms = 5000, every = 20): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, every));
    }
  }
}

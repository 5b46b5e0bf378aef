// Small helpers shared by the real-client tests.

export const STEP_TIMEOUT_MS = Number(process.env.JANO_CLIENT_STEP_TIMEOUT_MS || 15000);

/** Reject with a clear message if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, label) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timeout after ${ms} ms: ${label}`)), ms);
  });
  return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

/** Poll `fn` until it returns a truthy value (returned), or throw after `ms`. */
export async function waitFor(fn, ms, label, every = 25) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timeout after ${ms} ms waiting for: ${label}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export function isPositiveSafeInteger(v) {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/** Compact one-line JSON for logs, cut at `max` characters. */
export function brief(v, max = 600) {
  let s;
  try { s = JSON.stringify(v); } catch { s = String(v); }
  if (s === undefined) s = String(v);
  return s.length > max ? s.slice(0, max) + '…' : s;
}

export function requireEnv(name) {
  const v = process.env[name];
  if (!v) throw new Error(`environment variable ${name} must be set (see tests/clients/run.sh)`);
  return v;
}

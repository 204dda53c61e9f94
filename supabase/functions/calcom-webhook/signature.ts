// Cal.com webhook signatures: X-Cal-Signature-256 is the hex HMAC-SHA256 of the raw request
// body keyed with the webhook's secret. A webhook configured without a secret is sent with the
// literal "no-secret-provided" instead, which must never be accepted.

export const SIGNATURE_HEADER = "x-cal-signature-256";
export const NO_SECRET_SIGNATURE = "no-secret-provided";

export type VerifyResult =
  | { ok: true }
  | {
    ok: false;
    reason:
      | "secret_not_configured"
      | "signature_missing"
      | "no_secret_placeholder"
      | "signature_malformed"
      | "signature_mismatch";
  };

const encoder = new TextEncoder();

function toHex(bytes: ArrayBuffer): string {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Hex HMAC-SHA256 of `body` with `secret` (what Cal.com puts in X-Cal-Signature-256). */
export async function signBody(body: Uint8Array | string, secret: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const data = typeof body === "string" ? encoder.encode(body) : body;
  return toHex(await crypto.subtle.sign("HMAC", key, data as BufferSource));
}

/** Compares two strings in time that depends only on their length, not on where they differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

/** Checks a delivery's signature against the RAW body bytes (never a re-serialised body). */
export async function verifyCalSignature(
  rawBody: Uint8Array,
  header: string | null,
  secret: string | undefined,
): Promise<VerifyResult> {
  if (!secret) return { ok: false, reason: "secret_not_configured" };
  const given = (header ?? "").trim();
  if (!given) return { ok: false, reason: "signature_missing" };
  if (given === NO_SECRET_SIGNATURE) return { ok: false, reason: "no_secret_placeholder" };
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return { ok: false, reason: "signature_malformed" };
  const expected = await signBody(rawBody, secret);
  return timingSafeEqual(expected, given.toLowerCase())
    ? { ok: true }
    : { ok: false, reason: "signature_mismatch" };
}

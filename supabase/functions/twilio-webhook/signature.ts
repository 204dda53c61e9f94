// X-Twilio-Signature, Twilio's documented algorithm, on WebCrypto (no SDK needed):
// take the full URL Twilio requested, append every POST field name followed by its value,
// with names sorted (and a repeated name's values sorted too), HMAC-SHA1 the result with the
// account's auth token and base64 it. Twilio's own validators also accept the URL with or
// without an explicit default port, so this does too. Cross-checked against the Python
// SDK's RequestValidator by the pytest suite (tests/outreach/test_twilio_webhook_function.py).

export const SIGNATURE_HEADER = "X-Twilio-Signature";

const encoder = new TextEncoder();

/** The string Twilio signs: URL + name1 + value1 + name2 + value2 ... (sorted). */
export function signedPayload(url: string, params: URLSearchParams): string {
  let s = url;
  const names = [...new Set(params.keys())].sort();
  for (const name of names) {
    for (const value of [...new Set(params.getAll(name))].sort()) {
      s += name + value;
    }
  }
  return s;
}

function base64(bytes: ArrayBuffer): string {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

export async function computeSignature(
  authToken: string,
  url: string,
  params: URLSearchParams,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(authToken),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(signedPayload(url, params)));
  return base64(mac);
}

/** Constant-time comparison of two strings (length leaks, content does not). */
export function safeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** The URL with no port and with its port (the scheme's default when none is given): the
 * two forms Twilio's own validators accept, since Twilio's signing is not consistent. */
export function urlVariants(url: string): string[] {
  const m = url.match(/^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)(.*)$/i);
  if (!m) return [url];
  const [, scheme, authority, rest] = m;
  const at = authority.lastIndexOf("@");
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : "";
  const hostport = authority.slice(at + 1).match(/^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/);
  if (!hostport) return [url];
  const [, host, port] = hostport;
  const fallback = scheme.toLowerCase() === "https"
    ? "443"
    : scheme.toLowerCase() === "http"
    ? "80"
    : "";
  const without = `${scheme}://${userinfo}${host}${rest}`;
  const withPort = port || fallback
    ? `${scheme}://${userinfo}${host}:${port || fallback}${rest}`
    : without;
  return [...new Set([url, without, withPort])];
}

export async function validSignature(
  authToken: string,
  url: string,
  params: URLSearchParams,
  signature: string | null,
): Promise<boolean> {
  if (!authToken || !signature) return false;
  for (const candidate of urlVariants(url)) {
    if (safeEqual(await computeSignature(authToken, candidate, params), signature)) return true;
  }
  return false;
}

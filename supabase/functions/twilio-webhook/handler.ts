// twilio-webhook: Twilio's inbound SMS webhook and message status callbacks, one URL for both.
//
// 1. Check X-Twilio-Signature over the PUBLIC URL Twilio called (PUBLIC_WEBHOOK_BASE_URL +
//    /twilio-webhook + the query string; behind Supabase's gateway the function sees an
//    internal URL) and the form fields, with TWILIO_AUTH_TOKEN. Wrong or missing: 403, and
//    nothing is stored.
// 2. Hand the fields to private.ingest_twilio_webhook (idempotent on MessageSid for inbound
//    SMS, on MessageSid + status for callbacks), once.
// 3. Answer empty TwiML at once; the AI reply and notifications are jobs, not done here.
// A database failure answers 500 so that Twilio retries the delivery; fields the SQL refuses
// (SQLSTATE 22023) answer 400.

import { type Ingest, ingestTwilioParams } from "./db.ts";
import { SIGNATURE_HEADER, validSignature } from "./signature.ts";

export const FUNCTION_NAME = "twilio-webhook";
export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';
const MAX_BODY_BYTES = 64 * 1024; // an SMS webhook is a few hundred bytes

export interface HandlerDeps {
  authToken: () => string | undefined;
  publicBaseUrl: () => string | undefined;
  ingest: Ingest;
}

function text(status: number, body: string, type = "text/plain; charset=utf-8"): Response {
  return new Response(body, { status, headers: { "content-type": type } });
}

/** The URL Twilio called, as Twilio saw it. */
export function publicUrl(req: Request, base: string | undefined): string {
  const url = new URL(req.url);
  if (!base) return req.url;
  return `${base.replace(/\/+$/, "")}/${FUNCTION_NAME}${url.search}`;
}

/** The HTTP status of a refusal raised by private.raise_error (SQLSTATE PGRST, status in the
 * detail JSON); null for any other error. */
export function pgrstStatus(err: unknown): number | null {
  const e = err as { code?: string; detail?: string };
  if (e?.code !== "PGRST") return null;
  try {
    const status = Number(JSON.parse(e.detail ?? "").status);
    return Number.isInteger(status) ? status : null;
  } catch {
    return null;
  }
}

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  return async (req: Request): Promise<Response> => {
    if (req.method !== "POST") {
      return text(405, "Twilio webhooks are POSTed.");
    }
    const type = req.headers.get("content-type") ?? "";
    if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
      return text(415, "Expected application/x-www-form-urlencoded.");
    }
    const raw = await req.text();
    if (raw.length > MAX_BODY_BYTES) {
      return text(413, "Body too large.");
    }
    const form = new URLSearchParams(raw);
    const token = deps.authToken();
    if (!token) {
      console.error("twilio-webhook: TWILIO_AUTH_TOKEN is not set; refusing every delivery");
    }
    const url = publicUrl(req, deps.publicBaseUrl());
    if (!(await validSignature(token ?? "", url, form, req.headers.get(SIGNATURE_HEADER)))) {
      console.warn(`twilio-webhook: bad or missing signature for ${url}`);
      return text(403, "Invalid Twilio signature.");
    }
    const params: Record<string, string> = {};
    for (const [name, value] of form) {
      if (!(name in params)) params[name] = value;
    }
    try {
      await deps.ingest(params);
    } catch (err) {
      // 22023: the SQL refused the fields themselves (no MessageSid...): retrying cannot help.
      // The same refusal may come as PostgREST's custom error (private.raise_error, status 400).
      if ((err as { code?: string }).code === "22023" || pgrstStatus(err) === 400) {
        console.warn(`twilio-webhook: refused: ${(err as Error).message}`);
        return text(400, "Not a Twilio message webhook.");
      }
      console.error(`twilio-webhook: ingest failed for ${params.MessageSid ?? "?"}:`, err);
      return text(500, "Temporary failure; please retry.");
    }
    return text(200, EMPTY_TWIML, "text/xml");
  };
}

const fromEnv = createHandler({
  authToken: () => Deno.env.get("TWILIO_AUTH_TOKEN"),
  // On Supabase, SUPABASE_URL is set for every function: its /functions/v1 is the public base.
  publicBaseUrl: () =>
    Deno.env.get("PUBLIC_WEBHOOK_BASE_URL") ??
      (Deno.env.get("SUPABASE_URL") ? `${Deno.env.get("SUPABASE_URL")}/functions/v1` : undefined),
  ingest: ingestTwilioParams,
});

export default function handler(req: Request): Promise<Response> {
  return fromEnv(req);
}

// twilio-webhook: Twilio's inbound SMS webhook and message status callbacks, one URL for both.
//
// 1. Check X-Twilio-Signature over the PUBLIC URL Twilio called (PUBLIC_WEBHOOK_BASE_URL +
//    /twilio-webhook + the query string; behind Supabase's gateway the function sees an
//    internal URL) and the form fields, with the auth token of the client the message belongs
//    to when it connected its own Twilio account (private.twilio_webhook_token), else the
//    platform's TWILIO_AUTH_TOKEN. Wrong or missing: 403, and nothing is stored.
// 2. Hand the fields to private.ingest_twilio_webhook (idempotent on MessageSid for inbound
//    SMS, on MessageSid + status for callbacks), once.
// 3. Answer empty TwiML at once; the AI reply and notifications are jobs, not done here.
// A database failure answers 500 so that Twilio retries the delivery; fields the SQL refuses
// (SQLSTATE 22023, or private.raise_error's PGRST with a 4xx status) answer that 4xx.
//
// Odd bytes never lose a message: a NUL (which PostgreSQL text and jsonb cannot hold) and a
// lone UTF-16 surrogate become U+FFFD in every field, after the signature was checked over the
// fields as received; invalid UTF-8 percent-encodings are already U+FFFD from the form parser;
// other control characters are stored as sent. The original is not kept: an SMS body is text,
// and U+FFFD shows staff exactly where the unreadable character was.
// An inbound message (Body or SmsStatus=received) without a From number is refused with 400
// and nothing is stored: without the sender it belongs to no lead and cannot be answered.

import { callIngest, clientTwilioToken } from "../_shared/db.ts";
import { SIGNATURE_HEADER, validSignature } from "./signature.ts";

/** Hands Twilio's form fields, as one JSON object, to the idempotent ingest function. */
export type Ingest = (params: Record<string, string>) => Promise<unknown>;
const ingestTwilioParams: Ingest = (params) =>
  callIngest("ingest_twilio_webhook", JSON.stringify(params));

export const FUNCTION_NAME = "twilio-webhook";
export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';
const MAX_BODY_BYTES = 64 * 1024; // an SMS webhook is a few hundred bytes

export interface HandlerDeps {
  authToken: () => string | undefined;
  /** The token of the client these fields concern, when it has its own Twilio account. */
  clientToken?: (params: Record<string, string>) => Promise<string | null>;
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

/** The field with NUL and lone surrogates replaced by U+FFFD (storable as text and jsonb). */
export function storable(value: string): string {
  return value.toWellFormed().replaceAll("\u0000", "\uFFFD");
}

/** The fields that say which client a webhook concerns (storable: the lookup is SQL). */
export function routingFields(form: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["MessageSid", "To", "From", "MessagingServiceSid"]) {
    const value = form.get(name);
    if (value !== null) out[name] = storable(value);
  }
  return out;
}

/** A 4xx the SQL answered for the fields themselves (retrying cannot help), or null. */
export function refusalStatus(err: unknown): number | null {
  const e = err as { code?: string; detail?: string };
  if (e?.code === "22023") return 400;
  if (e?.code === "PGRST") {
    try {
      const status = Number(JSON.parse(e.detail ?? "{}").status);
      if (status >= 400 && status < 500) return status;
    } catch {
      // not private.raise_error's detail: a server-side failure
    }
  }
  return null;
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
    let token: string | undefined;
    try {
      token = (await deps.clientToken?.(routingFields(form))) ?? deps.authToken();
    } catch (err) {
      console.error("twilio-webhook: could not look up the client's Twilio token:", err);
      return text(500, "Temporary failure; please retry.");
    }
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
      const key = storable(name);
      if (!(key in params)) params[key] = storable(value);
    }
    const inbound = "Body" in params || (params.SmsStatus ?? "").toLowerCase() === "received";
    if (inbound && !(params.From ?? "").trim()) {
      console.warn(`twilio-webhook: inbound ${params.MessageSid ?? "?"} without From refused`);
      return text(400, "An inbound message needs its From number.");
    }
    try {
      await deps.ingest(params);
    } catch (err) {
      // The SQL refused the fields themselves (no MessageSid...): retrying cannot help.
      const refused = refusalStatus(err);
      if (refused !== null) {
        console.warn(`twilio-webhook: refused: ${(err as Error).message}`);
        return text(refused, "Not a Twilio message webhook.");
      }
      console.error(`twilio-webhook: ingest failed for ${params.MessageSid ?? "?"}:`, err);
      return text(500, "Temporary failure; please retry.");
    }
    return text(200, EMPTY_TWIML, "text/xml");
  };
}

const fromEnv = createHandler({
  authToken: () => Deno.env.get("TWILIO_AUTH_TOKEN"),
  clientToken: clientTwilioToken,
  // On Supabase, SUPABASE_URL is set for every function: its /functions/v1 is the public base.
  publicBaseUrl: () =>
    Deno.env.get("PUBLIC_WEBHOOK_BASE_URL") ??
      (Deno.env.get("SUPABASE_URL") ? `${Deno.env.get("SUPABASE_URL")}/functions/v1` : undefined),
  ingest: ingestTwilioParams,
});

export default function handler(req: Request): Promise<Response> {
  return fromEnv(req);
}

// calcom-webhook: receives Cal.com booking webhooks (BOOKING_CREATED, BOOKING_CANCELLED,
// BOOKING_RESCHEDULED), checks X-Cal-Signature-256 over the raw body with
// CALCOM_WEBHOOK_SECRET, and hands the event to private.ingest_calcom_webhook, which is
// idempotent per (booking uid, trigger event). A wrong, missing or placeholder signature is a
// 403 and nothing is stored. Environment is read per request, so a dev router may set it late.
// After the signature check, NUL and lone surrogates become U+FFFD (storableJson).

import { callIngest } from "../_shared/db.ts";
import { SIGNATURE_HEADER, verifyCalSignature } from "./signature.ts";

/** Hands the verified body (JSON text, cast to jsonb by Postgres) to the ingest function. */
export type Ingest = (rawJson: string) => Promise<unknown>;
const ingestCalcomEvent: Ingest = (rawJson) => callIngest("ingest_calcom_webhook", rawJson);

const MAX_BODY_BYTES = 1024 * 1024;

export interface HandlerDeps {
  secret: () => string | undefined;
  ingest: Ingest;
}

function reply(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function failure(status: number, code: string, message: string, details: unknown = null) {
  return reply(status, { error: { code, message, details } });
}

/** The parsed body with every NUL and lone surrogate (in keys and strings) replaced by
 * U+FFFD: PostgreSQL's jsonb refuses both, and a booking must not be lost for a stray byte in
 * its notes. */
export function storableJson(value: unknown): unknown {
  if (typeof value === "string") return value.toWellFormed().replaceAll("\u0000", "\uFFFD");
  if (Array.isArray(value)) return value.map(storableJson);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [storableJson(k) as string, storableJson(v)]),
    );
  }
  return value;
}

/** private.raise_error's 4xx (SQLSTATE PGRST: message = {code, message, details}, detail =
 * {status}), or null for any other failure. */
export function raisedError(
  err: unknown,
): { status: number; code: string; message: string; details: unknown } | null {
  const e = err as { code?: string; message?: string; detail?: string };
  if (e?.code !== "PGRST") return null;
  try {
    const status = Number(JSON.parse(e.detail ?? "{}").status);
    if (!(status >= 400 && status < 500)) return null;
    const body = JSON.parse(e.message ?? "{}");
    return {
      status,
      code: String(body.code ?? "VALIDATION_ERROR"),
      message: String(body.message ?? "The event was refused."),
      details: body.details ?? null,
    };
  } catch {
    return null;
  }
}

export function createHandler(deps: HandlerDeps): (req: Request) => Promise<Response> {
  return async (req: Request): Promise<Response> => {
    if (req.method !== "POST") {
      return failure(405, "METHOD_NOT_ALLOWED", "Cal.com webhooks are POSTed.");
    }
    const secret = deps.secret();
    if (!secret) {
      console.error("calcom-webhook: CALCOM_WEBHOOK_SECRET is not set; refusing every delivery");
    }
    const raw = new Uint8Array(await req.arrayBuffer());
    if (raw.byteLength > MAX_BODY_BYTES) {
      return failure(413, "PAYLOAD_TOO_LARGE", "The webhook body is too large.");
    }
    const check = await verifyCalSignature(raw, req.headers.get(SIGNATURE_HEADER), secret);
    if (!check.ok) {
      return failure(403, "FORBIDDEN", "The webhook signature is not valid.", {
        reason: check.reason,
      });
    }
    let text: string;
    try {
      const parsed = JSON.parse(new TextDecoder().decode(raw));
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new Error("not an object");
      }
      text = JSON.stringify(storableJson(parsed));
    } catch {
      return failure(400, "VALIDATION_ERROR", "The webhook body is not a JSON object.");
    }
    try {
      const result = await deps.ingest(text);
      return reply(200, { received: true, result });
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      const refused = raisedError(err);
      if (refused !== null) {
        // private.raise_error's refusal (SQLSTATE PGRST): its status and body, no retry loop.
        return failure(refused.status, refused.code, refused.message, refused.details);
      }
      if (code.startsWith("22")) {
        // The event is signed but malformed: a retry would not help.
        return failure(400, "VALIDATION_ERROR", (err as Error).message);
      }
      console.error("calcom-webhook: ingest failed", err);
      // 500 makes Cal.com retry later; ingest is idempotent so that is safe.
      return failure(500, "INTERNAL_ERROR", "The event could not be stored; retry later.");
    }
  };
}

const handler: (req: Request) => Promise<Response> = createHandler({
  secret: () => Deno.env.get("CALCOM_WEBHOOK_SECRET"),
  ingest: ingestCalcomEvent,
});

export default handler;

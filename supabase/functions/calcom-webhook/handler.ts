// calcom-webhook: receives Cal.com booking webhooks (BOOKING_CREATED, BOOKING_CANCELLED,
// BOOKING_RESCHEDULED), checks X-Cal-Signature-256 over the raw body with
// CALCOM_WEBHOOK_SECRET, and hands the event to private.ingest_calcom_webhook, which is
// idempotent per (booking uid, trigger event). A wrong, missing or placeholder signature is a
// 403 and nothing is stored. Environment is read per request, so a dev router may set it late.

import { type Ingest, ingestCalcomEvent } from "./db.ts";
import { SIGNATURE_HEADER, verifyCalSignature } from "./signature.ts";

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

/** A refusal raised by private.raise_error: SQLSTATE PGRST, the status in the detail JSON and
 * {code, message, details} in the message JSON. Null for any other error. */
export function pgrstRefusal(err: unknown): { status: number; message: string } | null {
  const e = err as { code?: string; message?: string; detail?: string };
  if (e?.code !== "PGRST") return null;
  try {
    const status = Number(JSON.parse(e.detail ?? "").status);
    const message = String(JSON.parse(e.message ?? "").message ?? "");
    return Number.isInteger(status) ? { status, message } : null;
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
    const text = new TextDecoder().decode(raw);
    try {
      const parsed = JSON.parse(text);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new Error("not an object");
      }
    } catch {
      return failure(400, "VALIDATION_ERROR", "The webhook body is not a JSON object.");
    }
    try {
      const result = await deps.ingest(text);
      return reply(200, { received: true, result });
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      if (code.startsWith("22")) {
        // The event is signed but malformed: a retry would not help.
        return failure(400, "VALIDATION_ERROR", (err as Error).message);
      }
      const refusal = pgrstRefusal(err);
      if (refusal?.status === 400) {
        // The same, refused by private.raise_error (PostgREST's custom error, SQLSTATE PGRST).
        return failure(400, "VALIDATION_ERROR", refusal.message);
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

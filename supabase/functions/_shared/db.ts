// The database side of a webhook function: one call to a private.ingest_* function over a
// direct connection (SUPABASE_DB_URL: Supabase gives it to every function; `dbr up` sets it
// locally). Shared by calcom-webhook and twilio-webhook; a folder whose name starts with "_"
// is not a function, Supabase bundles it with each function that imports it.

import postgres from "npm:postgres@3.4.5";

/** The ingest functions a webhook may call (each takes one jsonb and is idempotent). */
export type IngestFunction = "ingest_calcom_webhook" | "ingest_twilio_webhook";

let sql: ReturnType<typeof postgres> | null = null;
let sqlUrl = "";

function connection(): ReturnType<typeof postgres> {
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (!url) throw new Error("SUPABASE_DB_URL is not set");
  if (sql === null || url !== sqlUrl) {
    sql = postgres(url, {
      // Enough for bursts of callbacks; each ingest call is one short transaction.
      max: Number(Deno.env.get("WEBHOOK_DB_POOL") ?? 10),
      // prepare: false keeps it usable through Supabase's transaction pooler as well.
      prepare: false,
      idle_timeout: 20,
      connect_timeout: 10,
      onnotice: () => {},
    });
    sqlUrl = url;
  }
  return sql;
}

/** Calls private.<fn>(jsonText::jsonb) and returns its result.
 *
 * $1 is text on purpose: a parameter typed jsonb makes postgres.js JSON-encode the value
 * again, and a JSON string scalar would reach the function instead of the object. */
export async function callIngest(fn: IngestFunction, jsonText: string): Promise<unknown> {
  const rows = await connection().unsafe(`select private.${fn}($1::text::jsonb) as result`, [
    jsonText,
  ]);
  return rows[0]?.result ?? null;
}

/** The auth token of the client a Twilio webhook concerns when that client connected its own
 * Twilio account (private.twilio_webhook_token, read from Vault); null: the platform's token. */
export async function clientTwilioToken(params: Record<string, string>): Promise<string | null> {
  const rows = await connection().unsafe(
    "select private.twilio_webhook_token($1::text::jsonb) as token",
    [JSON.stringify(params)],
  );
  return (rows[0]?.token as string | null | undefined) ?? null;
}

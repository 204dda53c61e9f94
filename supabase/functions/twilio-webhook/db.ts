// The database side of the webhook: one call to private.ingest_twilio_webhook over a direct
// connection (SUPABASE_DB_URL: Supabase gives it to every function; `dbr up` sets it locally).

import postgres from "npm:postgres@3.4.5";

export type Ingest = (params: Record<string, string>) => Promise<unknown>;

let sql: ReturnType<typeof postgres> | null = null;
let sqlUrl = "";

function connection(): ReturnType<typeof postgres> {
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (!url) throw new Error("SUPABASE_DB_URL is not set");
  if (sql === null || url !== sqlUrl) {
    sql = postgres(url, {
      // Enough for bursts of Twilio callbacks; the ingest call is one short transaction.
      max: Number(Deno.env.get("TWILIO_WEBHOOK_DB_POOL") ?? 10),
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

/** Hands Twilio's form fields, as one JSON object, to the idempotent ingest function. */
export const ingestTwilioParams: Ingest = async (params) => {
  // $1 is text on purpose: a parameter typed jsonb makes postgres.js JSON-encode the value
  // again, and a JSON string scalar would reach the function instead of the object.
  const rows = await connection().unsafe(
    "select private.ingest_twilio_webhook($1::text::jsonb) as result",
    [JSON.stringify(params)],
  );
  return rows[0]?.result ?? null;
};

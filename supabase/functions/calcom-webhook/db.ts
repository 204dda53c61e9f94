// The database side of the webhook: one call to private.ingest_calcom_webhook over a direct
// connection (SUPABASE_DB_URL, which Supabase gives every function and `dbr up` sets locally).

import postgres from "npm:postgres@3.4.5";

export type Ingest = (rawJson: string) => Promise<unknown>;

let sql: ReturnType<typeof postgres> | null = null;
let sqlUrl = "";

function connection(): ReturnType<typeof postgres> {
  const url = Deno.env.get("SUPABASE_DB_URL");
  if (!url) throw new Error("SUPABASE_DB_URL is not set");
  if (sql === null || url !== sqlUrl) {
    // prepare: false keeps it usable through Supabase's transaction pooler as well.
    sql = postgres(url, { max: 2, prepare: false, idle_timeout: 20, connect_timeout: 10 });
    sqlUrl = url;
  }
  return sql;
}

/** Hands the verified body (JSON text, cast to jsonb by Postgres) to the ingest function. */
export const ingestCalcomEvent: Ingest = async (rawJson) => {
  const rows = await connection().unsafe(
    "select private.ingest_calcom_webhook($1::text::jsonb) as result",
    [rawJson],
  );
  return rows[0]?.result ?? null;
};

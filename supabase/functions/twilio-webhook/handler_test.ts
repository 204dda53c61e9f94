import { strict as assert } from "node:assert";

import { createHandler, EMPTY_TWIML, refusalStatus, storable } from "./handler.ts";
import { computeSignature } from "./signature.ts";

const TOKEN = "handler-test-token";
const PUBLIC_BASE = "https://project.example/functions/v1";
const FIELDS = {
  MessageSid: "SM0123456789abcdef0123456789abcdef",
  From: "+447700900123",
  To: "+447700900000",
  Body: "Yes please, call me",
  AccountSid: "AC10ca1000000000000000000000000000",
};

function setup(fail: false | { code?: string; detail?: string } = false) {
  const stored: Record<string, string>[] = [];
  const handler = createHandler({
    authToken: () => TOKEN,
    publicBaseUrl: () => PUBLIC_BASE,
    ingest: (params) => {
      if (fail) return Promise.reject(Object.assign(new Error("refused"), fail));
      stored.push(params);
      return Promise.resolve({ action: "stored" });
    },
  });
  return { handler, stored };
}

async function signedPost(
  fields: Record<string, string>,
  opts: { signUrl?: string; signature?: string | null; method?: string; type?: string } = {},
) {
  const body = new URLSearchParams(fields);
  const signUrl = opts.signUrl ?? `${PUBLIC_BASE}/twilio-webhook`;
  const signature = opts.signature === undefined
    ? await computeSignature(TOKEN, signUrl, body)
    : opts.signature;
  const headers = new Headers({
    "content-type": opts.type ?? "application/x-www-form-urlencoded",
  });
  if (signature !== null) headers.set("X-Twilio-Signature", signature);
  // The function sees an internal URL; Twilio signed the public one.
  return new Request("http://127.0.0.1:9999/twilio-webhook", {
    method: opts.method ?? "POST",
    headers,
    body: opts.method === "GET" ? undefined : body.toString(),
  });
}

Deno.test("a signed webhook is stored once and answered with empty TwiML", async () => {
  const { handler, stored } = setup();
  const res = await handler(await signedPost(FIELDS));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/xml");
  assert.equal(await res.text(), EMPTY_TWIML);
  assert.deepEqual(stored, [FIELDS]);
});

Deno.test("the signature is checked against the public URL, not the internal one", async () => {
  const { handler, stored } = setup();
  const res = await handler(
    await signedPost(FIELDS, { signUrl: "http://127.0.0.1:9999/twilio-webhook" }),
  );
  assert.equal(res.status, 403);
  assert.deepEqual(stored, []);
});

Deno.test("missing, wrong or tampered signatures are 403 and store nothing", async () => {
  const { handler, stored } = setup();
  assert.equal((await handler(await signedPost(FIELDS, { signature: null }))).status, 403);
  assert.equal((await handler(await signedPost(FIELDS, { signature: "bm9wZQ==" }))).status, 403);
  const good = await signedPost(FIELDS);
  const tampered = new Request(good.url, {
    method: "POST",
    headers: good.headers,
    body: new URLSearchParams({ ...FIELDS, Body: "STOP" }).toString(),
  });
  assert.equal((await handler(tampered)).status, 403);
  assert.deepEqual(stored, []);
});

Deno.test("only form POSTs are accepted", async () => {
  const { handler, stored } = setup();
  assert.equal((await handler(await signedPost(FIELDS, { method: "GET" }))).status, 405);
  assert.equal((await handler(await signedPost(FIELDS, { type: "application/json" }))).status, 415);
  assert.deepEqual(stored, []);
});

Deno.test("a database failure is a 500 so that Twilio retries", async () => {
  const { handler } = setup({ code: "08006" });
  const res = await handler(await signedPost(FIELDS));
  assert.equal(res.status, 500);
  await res.body?.cancel();
});

Deno.test("fields the database refuses are a 400, not a retry loop", async () => {
  const { handler } = setup({ code: "22023" });
  const res = await handler(await signedPost({ AccountSid: FIELDS.AccountSid }));
  assert.equal(res.status, 400);
  await res.body?.cancel();
});

Deno.test("a NUL or a lone surrogate becomes U+FFFD; other text is kept as sent", () => {
  assert.equal(storable("Yes\u0000please"), "Yes\uFFFDplease");
  assert.equal(storable("a\uD800b\uDC00"), "a\uFFFDb\uFFFD");
  assert.equal(storable("\u{1F600} ok \u0001\u007F"), "\u{1F600} ok \u0001\u007F");
});

Deno.test("a signed reply with a NUL byte reaches the database with U+FFFD", async () => {
  const { handler, stored } = setup();
  const res = await handler(await signedPost({ ...FIELDS, Body: "Yes\u0000please" }));
  assert.equal(res.status, 200);
  await res.body?.cancel();
  assert.deepEqual(stored, [{ ...FIELDS, Body: "Yes\uFFFDplease" }]);
});

Deno.test("an inbound message without From is a 400 and stores nothing", async () => {
  const { handler, stored } = setup();
  const { From: _from, ...noFrom } = FIELDS;
  for (const fields of [noFrom, { ...FIELDS, From: " " }]) {
    const res = await handler(await signedPost(fields));
    assert.equal(res.status, 400);
    await res.body?.cancel();
  }
  assert.deepEqual(stored, []);
});

Deno.test("private.raise_error's 4xx (SQLSTATE PGRST) is answered as that status", async () => {
  assert.equal(refusalStatus({ code: "PGRST", detail: '{"status": 400, "headers": {}}' }), 400);
  assert.equal(refusalStatus({ code: "PGRST", detail: '{"status": 503}' }), null);
  assert.equal(refusalStatus({ code: "PGRST", detail: "not json" }), null);
  assert.equal(refusalStatus({ code: "08006" }), null);
  const { handler } = setup({ code: "PGRST", detail: '{"status": 400}' });
  const res = await handler(await signedPost(FIELDS));
  assert.equal(res.status, 400);
  await res.body?.cancel();
});

Deno.test("a client with its own Twilio account: only its token verifies its webhooks", async () => {
  const stored: Record<string, string>[] = [];
  const seen: Record<string, string>[] = [];
  const handler = createHandler({
    authToken: () => TOKEN,
    clientToken: (params) => {
      seen.push(params);
      return Promise.resolve(params.To === FIELDS.To ? "client-own-token" : null);
    },
    publicBaseUrl: () => PUBLIC_BASE,
    ingest: (params) => {
      stored.push(params);
      return Promise.resolve({ action: "stored" });
    },
  });
  const url = `${PUBLIC_BASE}/twilio-webhook`;
  const body = new URLSearchParams(FIELDS);
  const post = async (token: string) =>
    handler(
      new Request("http://127.0.0.1:9999/twilio-webhook", {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "X-Twilio-Signature": await computeSignature(token, url, body),
        },
        body: body.toString(),
      }),
    );
  assert.equal((await post(TOKEN)).status, 403, "the platform's token no longer verifies it");
  assert.equal((await post("another-clients-token")).status, 403);
  assert.deepEqual(stored, []);
  assert.equal((await post("client-own-token")).status, 200);
  assert.deepEqual(stored, [FIELDS]);
  assert.deepEqual(
    seen[0],
    { MessageSid: FIELDS.MessageSid, To: FIELDS.To, From: FIELDS.From },
    "the lookup gets the fields that route the message",
  );
});

Deno.test("a failing token lookup is a 500 (Twilio retries), nothing stored", async () => {
  const stored: Record<string, string>[] = [];
  const handler = createHandler({
    authToken: () => TOKEN,
    clientToken: () => Promise.reject(new Error("database down")),
    publicBaseUrl: () => PUBLIC_BASE,
    ingest: (params) => {
      stored.push(params);
      return Promise.resolve({ action: "stored" });
    },
  });
  const res = await handler(await signedPost(FIELDS));
  assert.equal(res.status, 500);
  assert.deepEqual(stored, []);
});

import { strict as assert } from "node:assert";

import { createHandler, raisedError, storableJson } from "./handler.ts";
import { NO_SECRET_SIGNATURE, signBody } from "./signature.ts";

const SECRET = "whsec_handler_test";
const BODY = JSON.stringify({ triggerEvent: "BOOKING_CREATED", payload: { uid: "bk-1" } });

function setup(
  secret: string | undefined,
  fail?: { code?: string; message: string; detail?: string },
) {
  const stored: string[] = [];
  const handler = createHandler({
    secret: () => secret,
    ingest: (raw) => {
      if (fail) return Promise.reject(Object.assign(new Error(fail.message), fail));
      stored.push(raw);
      return Promise.resolve({ status: "recorded" });
    },
  });
  return { handler, stored };
}

function post(body: string, signature: string | null, method = "POST") {
  const headers = new Headers({ "content-type": "application/json" });
  if (signature !== null) headers.set("X-Cal-Signature-256", signature);
  return new Request("http://local/functions/v1/calcom-webhook", {
    method,
    headers,
    body: method === "GET" ? undefined : body,
  });
}

Deno.test("a signed event is handed over as its JSON text", async () => {
  const { handler, stored } = setup(SECRET);
  const res = await handler(post(BODY, await signBody(BODY, SECRET)));
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { received: true, result: { status: "recorded" } });
  assert.deepEqual(stored, [BODY]);
});

for (
  const [label, sig] of [
    ["a wrong signature", "0".repeat(64)],
    ["the no-secret placeholder", NO_SECRET_SIGNATURE],
    ["no signature", null],
  ] as const
) {
  Deno.test(`${label}: 403 with the API contract's error body, nothing stored`, async () => {
    const { handler, stored } = setup(SECRET);
    const res = await handler(post(BODY, sig));
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.equal(body.error.code, "FORBIDDEN");
    assert.deepEqual(stored, []);
  });
}

Deno.test("no secret configured: every delivery is refused", async () => {
  for (const secret of [undefined, ""]) {
    const { handler, stored } = setup(secret);
    const res = await handler(post(BODY, await signBody(BODY, "some-guess")));
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.details.reason, "secret_not_configured");
    assert.deepEqual(stored, []);
  }
});

Deno.test("a signed body that is not a JSON object is a 400", async () => {
  const { handler, stored } = setup(SECRET);
  const res = await handler(post("[1,2]", await signBody("[1,2]", SECRET)));
  assert.equal(res.status, 400);
  assert.deepEqual(stored, []);
});

Deno.test("GET is not allowed", async () => {
  const { handler } = setup(SECRET);
  assert.equal((await handler(post("", null, "GET"))).status, 405);
});

Deno.test("a database validation error is a 400, anything else a 500 (Cal.com retries)", async () => {
  const sig = await signBody(BODY, SECRET);
  const bad = setup(SECRET, { code: "22023", message: "needs payload.uid" });
  assert.equal((await bad.handler(post(BODY, sig))).status, 400);
  const down = setup(SECRET, { message: "connection refused" });
  const res = await down.handler(post(BODY, sig));
  assert.equal(res.status, 500);
  assert.equal((await res.json()).error.code, "INTERNAL_ERROR");
});

Deno.test("NUL and lone surrogates become U+FFFD, in keys and values alike", async () => {
  assert.deepEqual(
    storableJson({ a: "x\u0000y", ["k\u0000"]: ["\uD800", 1, null, { n: "\uDC00ok" }], ok: "\u{1F600}" }),
    { a: "x\uFFFDy", ["k\uFFFD"]: ["\uFFFD", 1, null, { n: "\uFFFDok" }], ok: "\u{1F600}" },
  );
  const body = '{"triggerEvent": "BOOKING_CREATED", "payload": {"uid": "bk-2", "additionalNotes": "a\\u0000b"}}';
  const { handler, stored } = setup(SECRET);
  const res = await handler(post(body, await signBody(body, SECRET)));
  assert.equal(res.status, 200);
  await res.body?.cancel();
  assert.deepEqual(stored.map((s) => JSON.parse(s).payload.additionalNotes), ["a\uFFFDb"]);
});

Deno.test("private.raise_error's 4xx is answered with its status and body", async () => {
  const message = '{"code": "VALIDATION_ERROR", "message": "a BOOKING_CREATED event needs payload.uid", "details": null, "hint": null}';
  const { handler } = setup(SECRET, { code: "PGRST", message, detail: '{"status": 400, "headers": {}}' });
  const res = await handler(post(BODY, await signBody(BODY, SECRET)));
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), {
    error: { code: "VALIDATION_ERROR", message: "a BOOKING_CREATED event needs payload.uid", details: null },
  });
  assert.equal(raisedError({ code: "PGRST", message, detail: '{"status": 500}' }), null);
  assert.equal(raisedError({ code: "08006", message: "down" }), null);
});

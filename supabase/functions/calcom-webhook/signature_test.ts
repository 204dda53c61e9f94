import { strict as assert } from "node:assert";
import { createHmac } from "node:crypto";

import { NO_SECRET_SIGNATURE, signBody, timingSafeEqual, verifyCalSignature } from "./signature.ts";

const SECRET = "whsec_test_3f9a";
const BODY = JSON.stringify({
  triggerEvent: "BOOKING_CREATED",
  payload: { uid: "bk1", title: "Café ☕ call", metadata: { lead_id: "x" } },
});
const raw = new TextEncoder().encode(BODY);

// The reference: what Cal.com computes (Node's createHmac over the body).
const nodeSig = (body: string, secret: string) =>
  createHmac("sha256", secret).update(body).digest("hex");

Deno.test("signBody matches Cal.com's HMAC-SHA256 hex, including non-ASCII bodies", async () => {
  assert.equal(await signBody(BODY, SECRET), nodeSig(BODY, SECRET));
  assert.equal(await signBody(raw, SECRET), nodeSig(BODY, SECRET));
});

Deno.test("a correct signature is accepted, upper-case hex too", async () => {
  assert.deepEqual(await verifyCalSignature(raw, nodeSig(BODY, SECRET), SECRET), { ok: true });
  assert.deepEqual(
    await verifyCalSignature(raw, nodeSig(BODY, SECRET).toUpperCase(), SECRET),
    { ok: true },
  );
});

Deno.test("a signature over a different body is refused (one byte changed)", async () => {
  const tampered = BODY.replace("BOOKING_CREATED", "BOOKING_CANCELLED");
  const r = await verifyCalSignature(raw, nodeSig(tampered, SECRET), SECRET);
  assert.deepEqual(r, { ok: false, reason: "signature_mismatch" });
});

Deno.test("a signature made with another secret is refused", async () => {
  const r = await verifyCalSignature(raw, nodeSig(BODY, "other"), SECRET);
  assert.deepEqual(r, { ok: false, reason: "signature_mismatch" });
});

Deno.test("the re-serialised body does not verify: the raw bytes are what is signed", async () => {
  const spaced = JSON.stringify(JSON.parse(BODY), null, 2);
  const r = await verifyCalSignature(
    new TextEncoder().encode(spaced),
    nodeSig(BODY, SECRET),
    SECRET,
  );
  assert.equal(r.ok, false);
});

Deno.test("Cal.com's no-secret placeholder is refused", async () => {
  const r = await verifyCalSignature(raw, NO_SECRET_SIGNATURE, SECRET);
  assert.deepEqual(r, { ok: false, reason: "no_secret_placeholder" });
});

Deno.test("missing and malformed signatures are refused", async () => {
  assert.deepEqual(await verifyCalSignature(raw, null, SECRET), {
    ok: false,
    reason: "signature_missing",
  });
  assert.deepEqual(await verifyCalSignature(raw, "", SECRET), {
    ok: false,
    reason: "signature_missing",
  });
  assert.deepEqual(await verifyCalSignature(raw, "sha256=abc", SECRET), {
    ok: false,
    reason: "signature_malformed",
  });
  assert.deepEqual(await verifyCalSignature(raw, nodeSig(BODY, SECRET).slice(0, 63), SECRET), {
    ok: false,
    reason: "signature_malformed",
  });
});

Deno.test("without a configured secret everything is refused, even a 'valid' signature", async () => {
  // An empty secret would make HMAC("", body) a signature anyone can compute.
  for (const secret of [undefined, ""]) {
    const r = await verifyCalSignature(raw, nodeSig(BODY, ""), secret);
    assert.deepEqual(r, { ok: false, reason: "secret_not_configured" });
  }
});

Deno.test("timingSafeEqual compares whole strings", () => {
  assert.equal(timingSafeEqual("abc", "abc"), true);
  assert.equal(timingSafeEqual("abc", "abd"), false);
  assert.equal(timingSafeEqual("abc", "abcd"), false);
  assert.equal(timingSafeEqual("", ""), true);
});

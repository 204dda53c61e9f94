import { strict as assert } from "node:assert";

import { computeSignature, safeEqual, urlVariants, validSignature } from "./signature.ts";

const URL_ = "https://example.com/functions/v1/twilio-webhook?x=1";
const PARAMS = new URLSearchParams({
  MessageSid: "SM1",
  Body: "Héllo 😀 & =",
  From: "+447700900001",
  To: "+447700900000",
});
// Computed with the Python SDK: RequestValidator("tok").compute_signature(URL_, dict(PARAMS)).
const PYTHON_SDK_SIGNATURE = "QIHaM7JXwF0ctJry/0vBqwvLi/4=";

Deno.test("signature matches the Twilio SDK's for the same URL and fields", async () => {
  assert.equal(await computeSignature("tok", URL_, PARAMS), PYTHON_SDK_SIGNATURE);
});

Deno.test("field order does not matter, values and URL do", async () => {
  const reordered = new URLSearchParams([...PARAMS].reverse());
  assert.equal(await computeSignature("tok", URL_, reordered), PYTHON_SDK_SIGNATURE);
  const changed = new URLSearchParams(PARAMS);
  changed.set("Body", "Hello");
  assert.notEqual(await computeSignature("tok", URL_, changed), PYTHON_SDK_SIGNATURE);
  assert.notEqual(await computeSignature("tok", URL_ + "2", PARAMS), PYTHON_SDK_SIGNATURE);
  assert.notEqual(await computeSignature("other", URL_, PARAMS), PYTHON_SDK_SIGNATURE);
});

Deno.test("validation accepts the URL with or without the default port", async () => {
  const sig = await computeSignature("tok", "https://example.com:443/f", PARAMS);
  assert.ok(await validSignature("tok", "https://example.com/f", PARAMS, sig));
  assert.ok(await validSignature("tok", "https://example.com:443/f", PARAMS, sig));
  assert.deepEqual(urlVariants("http://h:8080/x?q"), ["http://h:8080/x?q", "http://h/x?q"]);
});

Deno.test("missing signature, missing token or a different signature are refused", async () => {
  assert.equal(await validSignature("tok", URL_, PARAMS, null), false);
  assert.equal(await validSignature("", URL_, PARAMS, PYTHON_SDK_SIGNATURE), false);
  assert.equal(await validSignature("tok", URL_, PARAMS, PYTHON_SDK_SIGNATURE.slice(1)), false);
  assert.ok(safeEqual("abc", "abc"));
  assert.equal(safeEqual("abc", "abd"), false);
  assert.equal(safeEqual("abc", "abcd"), false);
});

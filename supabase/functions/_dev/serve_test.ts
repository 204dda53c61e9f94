import { strict as assert } from "node:assert";

import { createRouter, type Handler, loadFunctions } from "./serve.ts";

Deno.test("routes /functions/v1/<name> to that function's handler", async () => {
  const seen: string[] = [];
  const fn = (name: string): Handler => (req) => {
    seen.push(`${name} ${new URL(req.url).pathname}`);
    return new Response(name);
  };
  const router = createRouter(new Map([["a", fn("a")], ["b", fn("b")]]));
  assert.equal(await (await router(new Request("http://x/functions/v1/b"))).text(), "b");
  assert.equal(await (await router(new Request("http://x/functions/v1/a/sub?q=1"))).text(), "a");
  assert.deepEqual(seen, ["b /functions/v1/b", "a /functions/v1/a/sub"]);
  const missing = await router(new Request("http://x/functions/v1/nope"));
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  const outside = await router(new Request("http://x/rest/v1/leads"));
  assert.equal(outside.status, 404);
  await outside.body?.cancel();
});

Deno.test("a handler that throws is a 500, not a crashed server", async () => {
  const router = createRouter(new Map([["boom", () => Promise.reject(new Error("x"))]]));
  const res = await router(new Request("http://x/functions/v1/boom", { method: "POST" }));
  assert.equal(res.status, 500);
  await res.body?.cancel();
});

Deno.test("every function folder with a handler.ts is served", async () => {
  const functions = await loadFunctions(new URL("../", import.meta.url));
  assert.ok(functions.has("twilio-webhook"));
  assert.ok(![...functions.keys()].some((n) => n.startsWith("_")));
});

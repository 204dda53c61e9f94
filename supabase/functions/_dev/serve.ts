// Local edge-functions server: what `supabase functions serve` does, without Docker.
// Serves every function folder (one with a handler.ts whose default export handles a
// Request) under http://127.0.0.1:<port>/functions/v1/<name>. Folders starting with "_" or
// "." are not functions. A function whose module fails to load answers 500 with the error,
// and the others keep working.
//
//   deno run -A supabase/functions/_dev/serve.ts [port]      (port 0: pick a free one)
//
// The port comes from the argument, else FUNCTIONS_PORT, else 54321. Once listening it
// prints "listening on http://127.0.0.1:<port>" (tests read the port from that line).

export type Handler = (req: Request) => Response | Promise<Response>;

const PREFIX = "/functions/v1/";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

export async function loadFunctions(dir: URL): Promise<Map<string, Handler>> {
  const found = new Map<string, Handler>();
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isDirectory || entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
    const file = new URL(`${entry.name}/handler.ts`, dir);
    try {
      await Deno.stat(file);
    } catch {
      continue;
    }
    try {
      const mod = await import(file.href);
      if (typeof mod.default !== "function") throw new Error("handler.ts has no default export");
      found.set(entry.name, mod.default as Handler);
    } catch (err) {
      console.error(`functions: ${entry.name} failed to load:`, err);
      const message = String(err);
      found.set(entry.name, () => json(500, { error: `function failed to load: ${message}` }));
    }
  }
  return found;
}

export function createRouter(functions: Map<string, Handler>): Handler {
  return async (req: Request): Promise<Response> => {
    const { pathname } = new URL(req.url);
    if (!pathname.startsWith(PREFIX)) {
      return json(404, { error: "not found", functions: [...functions.keys()].sort() });
    }
    const name = pathname.slice(PREFIX.length).split("/")[0];
    const fn = functions.get(name);
    if (!fn) return json(404, { error: `no function named ${name}` });
    try {
      return await fn(req);
    } catch (err) {
      console.error(`functions: ${name} threw:`, err);
      return json(500, { error: "function threw" });
    }
  };
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? Deno.env.get("FUNCTIONS_PORT") ?? 54321);
  const functions = await loadFunctions(new URL("../", import.meta.url));
  Deno.serve(
    {
      hostname: "127.0.0.1",
      port,
      onListen: ({ port }) => {
        console.log(`functions: ${[...functions.keys()].sort().join(", ")}`);
        console.log(`listening on http://127.0.0.1:${port}`);
      },
    },
    createRouter(functions),
  );
}

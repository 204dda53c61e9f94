// Edge function entry point (Supabase runs this; locally _dev/serve.ts imports handler.ts).
import handler from "./handler.ts";

Deno.serve(handler);

// Serves a worker built by worker-build under miniflare on a loopback port
// with D1 bindings (each an empty in-memory D1 database: DB0 … DB{n-1}
// for a number n, or the comma-separated names given), prints its URL as
// the first line of stdout, and exits when stdin closes (the test process
// that started it ended) or on Ctrl-C.
//
// usage: node harness.mjs <worker build dir> <n | NAME,NAME…> [port]
import { Miniflare } from "miniflare";
import path from "node:path";

const [buildDir, bindings, port] = process.argv.slice(2);
const names = /^[0-9]+$/.test(bindings)
  ? Array.from({ length: Number(bindings) }, (_, i) => `DB${i}`)
  : bindings.split(",");
const databases = Object.fromEntries(names.map((name) => [name, `factos-${name}`]));
const mf = new Miniflare({
  modules: true,
  modulesRoot: buildDir,
  scriptPath: path.join(buildDir, "index.js"),
  modulesRules: [
    { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
    { type: "CompiledWasm", include: ["**/*.wasm"] },
  ],
  compatibilityDate: "2025-01-01",
  d1Databases: databases,
  host: "127.0.0.1",
  port: Number(port ?? 0),
});
const url = await mf.ready;
process.stdout.write(`${url}\n`);
process.stdin.resume();
process.stdin.on("end", async () => {
  await mf.dispose();
  process.exit(0);
});

// Serves the factos-d1 test worker under miniflare on a loopback port with
// D1 bindings DB0 … DB{n-1} (each an empty in-memory D1 database), prints
// its URL as the first line of stdout, and exits when stdin closes (the
// test process that started it ended).
//
// usage: node harness.mjs <worker build dir> <number of D1 bindings>
import { Miniflare } from "miniflare";
import path from "node:path";

const [buildDir, count] = process.argv.slice(2);
const databases = {};
for (let i = 0; i < Number(count); i++) {
  databases[`DB${i}`] = `factos-test-${i}`;
}
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
  port: 0,
});
const url = await mf.ready;
process.stdout.write(`${url}\n`);
process.stdin.resume();
process.stdin.on("end", async () => {
  await mf.dispose();
  process.exit(0);
});

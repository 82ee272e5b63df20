// Prints the portal's JavaScript size, raw and gzip-compressed, against its 400 KB budget.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET = 400 * 1024;
const assets = join(dirname(fileURLToPath(import.meta.url)), "..", "build", "portal", "assets");
let raw = 0;
let gz = 0;
for (const name of readdirSync(assets).filter((n) => n.endsWith(".js")).sort()) {
  const bytes = readFileSync(join(assets, name));
  const zipped = gzipSync(bytes, { level: 9 }).length;
  raw += bytes.length;
  gz += zipped;
  console.log(`${name.padEnd(28)} ${String(bytes.length).padStart(9)} B  gzip ${String(zipped).padStart(8)} B`);
}
const kb = (n) => (n / 1024).toFixed(1);
console.log(`all JavaScript: ${kb(raw)} KB, gzip ${kb(gz)} KB (budget ${kb(BUDGET)} KB gzip)`);
if (gz > BUDGET) {
  console.error("over budget");
  process.exit(1);
}

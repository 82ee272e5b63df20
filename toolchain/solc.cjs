#!/usr/bin/env node
// A `solc` executable backed by the npm Solidity compiler (emscripten build).
//
// py-solc-x and brownie only ever call a native solc with `--version` or with
// `--standard-json` (input on stdin, output on stdout). This answers exactly those,
// calling solc.compile() in-process: wrapping `solcjs --standard-json` instead prints a
// non-JSON first line and truncates piped output at 64 KB.
'use strict';
const fs = require('fs');
const path = require('path');

const solc = require(require.resolve('solc', { paths: [path.resolve(__dirname, '..')] }));
const args = process.argv.slice(2);

function version() {
  // Same shape as the native binary so version regexes match.
  const v = solc.version().replace('.Emscripten.clang', '.Linux.g++');
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${v}\n`);
}

function allowedRoots() {
  const roots = [process.cwd()];
  for (let i = 0; i < args.length; i += 1) {
    if (args[i] === '--allow-paths' && args[i + 1]) roots.push(...args[i + 1].split(','));
    if (args[i] === '--base-path' && args[i + 1]) roots.push(args[i + 1]);
  }
  return roots.map((r) => path.resolve(r));
}

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath)
    ? [importPath]
    : allowedRoots().map((root) => path.join(root, importPath));
  for (const file of candidates) {
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
  }
  return { error: `File not found: ${importPath}` };
}

// Synchronous, looped write: a pipe may take less than the whole document per call.
function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

function standardJson() {
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: findImports });
  writeAll(Buffer.from(output, 'utf8'));
}

if (args.includes('--version')) version();
else if (args.includes('--standard-json')) standardJson();
else {
  process.stderr.write('this solc only supports --version and --standard-json\n');
  process.exit(2);
}

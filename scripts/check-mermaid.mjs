// Parses Mermaid files given as arguments with the real Mermaid parser; exits 1 if any fails.
import { JSDOM } from 'jsdom';
import fs from 'fs';
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const mermaid = (await import('mermaid')).default;
mermaid.initialize({ startOnLoad: false });
let failed = 0;
for (const f of process.argv.slice(2)) {
  const text = fs.readFileSync(f, 'utf8');
  try { await mermaid.parse(text); console.log(`ok ${f} (${text.split('\n').length} lines)`); }
  catch (e) { failed++; console.log(`FAIL ${f}: ${String(e.message || e).slice(0, 400)}`); }
}
process.exit(failed ? 1 : 0);

#!/usr/bin/env node
// Keeps dependencies pointing one way (DESIGN.md "Layers") and the import graph free of cycles.
// Runs before the tests; exits non-zero with one line per violation.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'src');
const ALLOWED = {
  common: ['common'],
  protocol: ['common', 'protocol'],
  storage: ['common', 'storage'],
  client: ['common', 'protocol', 'client'],
  broker: ['common', 'protocol', 'storage', 'broker'],
  cli: ['common', 'protocol', 'client', 'broker', 'cli'],
};

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file) => path.relative(SRC, file).split(path.sep)[0];
const problems = [];
const graph = new Map();

for (const file of files(SRC)) {
  const text = readFileSync(file, 'utf8');
  const deps = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)) {
    const isTypeOnly = /^\s*(?:import|export)\s+type\s/.test(m[0]);
    const target = path.resolve(path.dirname(file), m[1].replace(/\.js$/, '.ts'));
    const from = layerOf(file);
    const to = layerOf(target);
    const allowed = ALLOWED[from];
    if (allowed && to.endsWith('.ts') === false && !allowed.includes(to)) {
      problems.push(`${path.relative(SRC, file)} imports ${path.relative(SRC, target)}: ${from} may not depend on ${to}`);
    }
    if (!isTypeOnly) deps.push(target);
  }
  graph.set(file, deps);
}

// Cycle check over runtime imports (type-only imports vanish at run time).
const state = new Map();
const stack = [];
function visit(node) {
  state.set(node, 'active');
  stack.push(node);
  for (const dep of graph.get(node) ?? []) {
    if (state.get(dep) === 'active') {
      const cycle = stack.slice(stack.indexOf(dep)).concat(dep).map((f) => path.relative(SRC, f));
      problems.push(`import cycle: ${cycle.join(' -> ')}`);
    } else if (!state.has(dep) && graph.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(node, 'done');
}
for (const node of graph.keys()) if (!state.has(node)) visit(node);

if (problems.length > 0) {
  for (const p of problems) console.error(`check-layers: ${p}`);
  process.exit(1);
}
console.log(`check-layers: ${graph.size} modules, layers respected, no import cycles`);

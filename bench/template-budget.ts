// What the chat-template budget costs per request: the same templates rendered by @huggingface/jinja's own
// Template.render and by renderWithBudget (template-budget.ts: the clock read at every step and loop
// iteration, strings and lists checked), on a 20-message chat, alternating, best of --rounds.
//
// Run: npm run build && node dist/bench/template-budget.js [--renders 2000] [--rounds 3] [--out bench/results/template-budget.json]
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Template } from '@huggingface/jinja';
import { parseArgs, type OptionSpec } from '../src/cli/args.js';
import { NAMED_TEMPLATES } from '../src/server/chat-templates.js';
import { budgetFor, renderWithBudget } from '../src/tokenizer/template-budget.js';

const SPECS: OptionSpec[] = [
  { name: 'renders', type: 'number', description: 'renders per measurement', default: 2000 },
  { name: 'rounds', type: 'number', description: 'measurements of each (best kept)', default: 3 },
  { name: 'out', type: 'string', description: 'JSON output', default: 'bench/results/template-budget.json' },
];

const o = parseArgs(process.argv.slice(2), SPECS).options;
const N = o.renders as number;
const messages = Array.from({ length: 20 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `Message number ${i}, with a few words in it.` }));
const vars = { messages, bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>', add_generation_prompt: true };
const results: Record<string, { plainUs: number; budgetedUs: number; ratio: number }> = {};
for (const name of Object.keys(NAMED_TEMPLATES)) {
  const t = new Template(NAMED_TEMPLATES[name]!);
  if (renderWithBudget(t, vars, budgetFor(0)) !== t.render(vars)) throw new Error(`${name}: the budgeted render differs`);
  let plain = Infinity;
  let budgeted = Infinity;
  for (let r = 0; r < (o.rounds as number); r++) {
    let t0 = performance.now();
    for (let i = 0; i < N; i++) t.render(vars);
    plain = Math.min(plain, ((performance.now() - t0) / N) * 1000);
    t0 = performance.now();
    for (let i = 0; i < N; i++) renderWithBudget(t, vars, budgetFor(1000));
    budgeted = Math.min(budgeted, ((performance.now() - t0) / N) * 1000);
  }
  results[name] = { plainUs: Math.round(plain), budgetedUs: Math.round(budgeted), ratio: Math.round((budgeted / plain) * 100) / 100 };
  console.log(`template-budget ${name}: ${results[name].plainUs} us plain, ${results[name].budgetedUs} us under the budget (x${results[name].ratio}) per 20-message render`);
}
const out = o.out as string;
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ messages: 20, renders: N, results }, null, 2));
console.log(`template-budget: wrote ${out}`);

// Helpers for the Node interop tests: run `experiment serve` as a process
// and read the conformance set. The binary comes from EXPERIMENT_BIN (the Go
// test in ../ builds it and runs these tests).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const bin = process.env.EXPERIMENT_BIN;
export const casesDir = resolve(process.env.EXPERIMENT_CONFORMANCE_DIR || '../../testdata/conformance/cases');

// startServe starts serve on a free port and resolves to {url, stop}; stop
// sends SIGTERM and rejects unless serve exits 0 (its drain promise).
export function startServe(flags, cohorts, extra = []) {
  if (!bin) throw new Error('EXPERIMENT_BIN is not set: run these tests through `go test` in interop/');
  const args = ['serve', '--flags', flags, '--listen', '127.0.0.1:0', ...extra];
  if (cohorts) args.push('--cohorts', cohorts);
  const proc = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`serve did not announce its address:\n${log}`)), 20000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /^serving .* on (http:\/\/[^ ;]+)/m.exec(log);
      if (m && timer) {
        clearTimeout(timer);
        res({ url: m[1], stop: () => stop(proc, exited, () => log) });
      }
    });
    exited.then(({ code }) => rej(new Error(`serve exited ${code} before listening:\n${log}`)));
  });
}

async function stop(proc, exited, log) {
  proc.kill('SIGTERM');
  const { code, signal } = await exited;
  if (code !== 0) throw new Error(`serve exited ${code} (${signal}) after SIGTERM, want 0:\n${log()}`);
}

function lines(path) {
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
}

export function loadCases() {
  return readdirSync(casesDir)
    .map((name) => join(casesDir, name))
    .filter((dir) => statSync(dir).isDirectory())
    .map((dir) => ({
      name: dir.split('/').pop(),
      flags: join(dir, 'flags.json'),
      cohorts: existsSync(join(dir, 'cohorts')) ? join(dir, 'cohorts') : '',
      users: lines(join(dir, 'users.jsonl')).map((l) => JSON.parse(l)),
      expected: lines(join(dir, 'expected.jsonl')).map((l) => JSON.parse(l)),
    }));
}

// normalize writes variants with the four fields expected.jsonl always has.
export function normalize(variants) {
  const out = {};
  for (const [k, v] of Object.entries(variants)) {
    out[k] = { key: v.key, value: v.value ?? '', payload: v.payload ?? null, metadata: v.metadata ?? null };
  }
  return JSON.parse(JSON.stringify(out));
}

// streamClients is serve's count of open flag streams, from /status.
export async function streamClients(url) {
  const st = await (await fetch(url + '/status')).json();
  return st.deployments[0].stream_clients;
}

export async function waitFor(what, cond, ms = 10000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

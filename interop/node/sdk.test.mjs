// Amplitude's Node SDK, unmodified, against `experiment serve`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, renameSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Experiment } from '@amplitude/experiment-node-server';
import { startServe, loadCases, normalize, streamClients, waitFor } from './serve.mjs';

const quiet = { logLevel: 0 };

// Every conformance user through a polling local client (server URL with a
// trailing slash), a streaming one, and the remote client; one serve per
// case. Remote answers are serve's engine and must match expected.jsonl.
// Local answers are the Node engine's, which differs from the Go engine that
// wrote expected.jsonl on these adversarial cases (JS RegExp throws on RE2
// syntax, numbers print differently): so the oracle for the local clients is
// the same SDK bootstrapped with flags.json itself, without serve.
for (const c of loadCases()) {
  test(`conformance ${c.name}`, async () => {
    const serve = await startServe(c.flags, c.cohorts);
    const cohortSyncConfig = c.cohorts
      ? { apiKey: 'interop-api', secretKey: 'interop-secret', cohortServerUrl: serve.url + '/' }
      : undefined;
    const poll = Experiment.initializeLocal(`interop-node-poll-${c.name}`, {
      ...quiet, serverUrl: serve.url + '/', flagConfigPollingIntervalMillis: 3600000, cohortSyncConfig,
    });
    const stream = Experiment.initializeLocal(`interop-node-stream-${c.name}`, {
      ...quiet, serverUrl: serve.url, streamUpdates: true, streamServerUrl: serve.url,
      flagConfigPollingIntervalMillis: 3600000, cohortSyncConfig,
    });
    const bootstrap = Object.fromEntries(JSON.parse(readFileSync(c.flags, 'utf8')).map((f) => [f.key, f]));
    const oracle = Experiment.initializeLocal(`interop-node-oracle-${c.name}`, { ...quiet, bootstrap });
    const remote = Experiment.initializeRemote(`interop-node-remote-${c.name}`, {
      ...quiet, serverUrl: serve.url, fetchTimeoutMillis: 10000, fetchRetries: 0,
    });
    try {
      await poll.start();
      await stream.start();
      // The SDK falls back to polling silently when its stream fails.
      await waitFor('a stream client in /status', async () => (await streamClients(serve.url)) >= 1);
      const failures = [];
      for (const [i, user] of c.users.entries()) {
        const local = evaluate(poll, user);
        check(failures, 'local stream vs poll', i, local, evaluate(stream, user));
        // Cohort cases: the oracle has no cohorts, so it is compared only
        // where no cohort is involved (see the report in the Go test).
        if (!c.cohorts) check(failures, 'local poll vs bootstrap', i, evaluate(oracle, user), local);
        // The SDK stamps `library` on users without one, and some flags
        // target it; an empty library is absent to the engine, as in
        // expected.jsonl.
        const sent = { ...user, library: user.library ?? '' };
        check(failures, 'remote', i, c.expected[i], normalize(await remote.fetchV2(sent)));
      }
      assert.deepEqual(failures.slice(0, 10), [], `${failures.length} differences in ${c.name}`);
    } finally {
      poll.stop();
      stream.stop();
      await serve.stop();
    }
  });
}

// evaluate runs a local client on a copy (evaluateV2 writes cohort ids into
// the user it is given); a throw is a result too, to compare.
function evaluate(client, user) {
  try {
    return normalize(client.evaluateV2(structuredClone(user)));
  } catch (e) {
    return { __error__: String(e.message) };
  }
}

function check(failures, client, i, want, got) {
  try {
    assert.deepEqual(got, want);
  } catch (e) {
    failures.push(`${client}: users.jsonl:${i + 1}: ${e.message.slice(0, 600)}`);
  }
}

// A one-flag config: "on" for the user whose id is `id`, "off" for everyone
// else; written by rename so serve never reads half a file.
function writeFlags(path, id, version = 1) {
  const flag = {
    key: 'interop-flag', dependencies: [],
    metadata: { deployed: true, evaluationMode: 'local', flagType: 'release', flagVersion: version },
    segments: [
      { conditions: [[{ selector: ['context', 'user', 'user_id'], op: 'is', values: [id] }]], variant: 'on' },
      { metadata: { segmentName: 'All Other Users' }, variant: 'off' },
    ],
    variants: { on: { key: 'on', value: 'on' }, off: { key: 'off', value: 'off' } },
  };
  writeFileSync(path + '.tmp', JSON.stringify([flag]));
  renameSync(path + '.tmp', path);
}

// Remote evaluation sends the user as URL-safe base64 without padding; these
// ids and properties make '-' and '_' appear where the standard alphabet has
// '+' and '/'.
test('remote fetchV2 with emoji and Cyrillic users', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'interop-')), 'flags.json');
  const id = 'ёжик-🦔-Москва?~>';
  writeFlags(path, id);
  const serve = await startServe(path, '');
  try {
    const remote = Experiment.initializeRemote('interop-node-unicode', { ...quiet, serverUrl: serve.url + '/', fetchRetries: 0 });
    for (const [user, want] of [
      [{ user_id: id, user_properties: { город: 'Санкт-Петербург 🌉', tags: ['😀', '>?'] } }, 'on'],
      [{ user_id: id + '!', device_id: '🚀ä' }, 'off'],
    ]) {
      const got = await remote.fetchV2(user);
      assert.equal(got['interop-flag']?.key, want, JSON.stringify(user));
    }
  } finally {
    await serve.stop();
  }
});

// An edit of the flags file reaches a streaming client within seconds,
// though its polling is an hour apart.
test('stream push reaches the Node SDK', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'interop-')), 'flags.json');
  writeFlags(path, 'user-1');
  const serve = await startServe(path, '');
  const client = Experiment.initializeLocal('interop-node-push', {
    ...quiet, serverUrl: serve.url, streamUpdates: true, streamServerUrl: serve.url + '/', flagConfigPollingIntervalMillis: 3600000,
  });
  try {
    await client.start();
    await waitFor('a stream client in /status', async () => (await streamClients(serve.url)) >= 1);
    const variant = () => client.evaluateV2({ user_id: 'user-2' })['interop-flag']?.key;
    assert.equal(variant(), 'off');
    writeFlags(path, 'user-2', 2);
    await waitFor('the pushed flags', async () => variant() === 'on');
  } finally {
    client.stop();
    await serve.stop();
  }
});

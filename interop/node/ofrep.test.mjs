// OpenFeature's Node OFREP provider, unmodified, against `experiment serve`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { startServe, loadCases } from './serve.mjs';

// A few users of a conformance case: a served variant's value is its
// payload, else its configured value, else its key; Amplitude's default
// variant and no variant at all are DEFAULT and give the code's default.
test('OFREP single evaluation through the Node provider', async () => {
  const c = loadCases().find((x) => x.name === '02-mixed');
  const variants = Object.fromEntries(JSON.parse((await import('node:fs')).readFileSync(c.flags, 'utf8')).map((f) => [f.key, f.variants]));
  const serve = await startServe(c.flags, '');
  try {
    await OpenFeature.setProviderAndWait('interop', new OFREPProvider({ baseUrl: serve.url, headers: [['Authorization', 'Bearer interop']] }));
    const client = OpenFeature.getClient('interop');
    for (const [i, user] of c.users.slice(0, 10).entries()) {
      const ctx = { ...user, targetingKey: user.user_id ?? '' };
      for (const key of Object.keys(variants)) {
        const res = c.expected[i][key];
        const served = res && !res.metadata?.default && res.metadata?.deployed !== false;
        const where = `users.jsonl:${i + 1} ${key}`;
        if (!served) {
          const got = await client.getObjectDetails(key, { code: 'default' }, ctx);
          assert.deepEqual(got.value, { code: 'default' }, where);
          continue;
        }
        const want = res.payload ?? variants[key][res.key].value ?? res.key;
        // The SDK checks the type against the getter's: ask with the right one.
        const got = await typed(client, want)(key, ctx);
        assert.equal(got.errorCode, undefined, `${where}: ${got.errorMessage}`);
        assert.deepEqual(got.value, want, where);
        assert.equal(got.variant, res.key, where);
      }
    }
    const missing = await client.getBooleanDetails('no-such-flag', true, { targetingKey: 'u' });
    assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
    assert.equal(missing.value, true);
  } finally {
    await OpenFeature.close();
    await serve.stop();
  }
});

function typed(client, want) {
  switch (typeof want) {
    case 'boolean': return (key, ctx) => client.getBooleanDetails(key, !want, ctx);
    case 'string': return (key, ctx) => client.getStringDetails(key, '', ctx);
    case 'number': return (key, ctx) => client.getNumberDetails(key, -1, ctx);
    default: return (key, ctx) => client.getObjectDetails(key, {}, ctx);
  }
}

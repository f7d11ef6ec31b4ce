// The official openai npm client against a running saem serve: models.list, embeddings.create
// (base64, the client's default, and float) compared with `saem embed`, and errors as the client
// reports them. Usage: node openai.mjs BASE_URL API_KEY SAEM_BINARY ENCODER
import OpenAI from 'openai';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

const [baseURL, apiKey, saem, encoder] = process.argv.slice(2);
const client = new OpenAI({ baseURL: baseURL + '/v1', apiKey, maxRetries: 0 });

const models = await client.models.list();
const ids = models.data.map((m) => m.id);
assert.ok(ids.some((id) => id.startsWith('model2vec:')), `the encoder is listed: ${ids}`);
assert.ok(models.data.every((m) => m.object === 'model' && m.owned_by === 'saem'));

const input = ['water springs from the ground', '샘은 물이 솟아나는 곳이다', 'Write-ahead logging'];
const expected = execFileSync(saem, ['embed', '--encoder', encoder], { input: input.join('\n') + '\n' })
  .toString().trim().split('\n').map((l) => JSON.parse(l));
for (const encoding_format of [undefined, 'base64', 'float']) {
  const r = await client.embeddings.create({ model: 'potion', input, ...(encoding_format ? { encoding_format } : {}) });
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, input.length);
  assert.ok(r.usage.prompt_tokens > 0 && r.usage.total_tokens === r.usage.prompt_tokens);
  r.data.forEach((d, i) => {
    assert.equal(d.index, i);
    // Asked for base64, the client hands the string over; by default it asked for base64 itself
    // and decoded it.
    let v = d.embedding;
    if (encoding_format === 'base64') {
      assert.equal(typeof v, 'string');
      const bytes = Buffer.from(v, 'base64');
      v = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
    }
    assert.equal(v.length, expected[i].length);
    // saem embed prints 7 significant digits; the route sends the floats themselves.
    const worst = Math.max(...Array.from(v, (x, k) => Math.abs(x - expected[i][k])));
    assert.ok(worst < 1e-6, `${encoding_format ?? 'default'} [${i}] differs from saem embed by ${worst}`);
  });
}
const single = await client.embeddings.create({ model: 'potion', input: 'one string' });
assert.equal(single.data.length, 1);

await assert.rejects(client.embeddings.create({ model: 'potion', input: [] }), (e) => {
  assert.ok(e instanceof OpenAI.BadRequestError, `400 as BadRequestError, got ${e}`);
  assert.equal(e.code, 'invalid_field');
  assert.equal(e.type, 'invalid_request_error');
  return true;
});
const stranger = new OpenAI({ baseURL: baseURL + '/v1', apiKey: 'wrong-key', maxRetries: 0 });
await assert.rejects(stranger.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
console.log(`openai client: models.list, embeddings.create (default, base64, float), errors: ok`);

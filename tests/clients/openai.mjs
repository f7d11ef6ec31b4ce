// The official openai npm client against a running saem serve: models.list, embeddings.create
// (base64, the client's default, and float) compared with `saem embed`, chat.completions.create
// (answers from a collection and plain chat with the decoder, whole and streamed), and errors as
// the client reports them. Usage: node openai.mjs BASE_URL API_KEY SAEM_BINARY ENCODER
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
// Chat: the collection "default" answers from the samples; the decoder (stories.gguf) chats.
assert.ok(ids.includes('default') && ids.includes('stories.gguf'), `the collection and the decoder are listed: ${ids}`);
const question = { role: 'user', content: 'How does BM25 rank documents?' };
const whole = await client.chat.completions.create({ model: 'default', messages: [question], temperature: 0 });
assert.equal(whole.object, 'chat.completion');
assert.equal(whole.choices.length, 1);
assert.equal(whole.choices[0].message.role, 'assistant');
assert.ok(whole.choices[0].message.content.length > 0);
assert.ok(['stop', 'length'].includes(whole.choices[0].finish_reason));
assert.ok(whole.usage.completion_tokens > 0 && whole.usage.completion_tokens <= 24);
assert.equal(whole.saem.method, 'generated');
assert.ok(whole.citations.length > 0 && whole.citations[0].path.endsWith('ranking.html'), JSON.stringify(whole.citations));

const stream = await client.chat.completions.create({
  model: 'default', messages: [question], temperature: 0, stream: true, stream_options: { include_usage: true },
});
let streamed = '', chunks = 0, finish = null, usage = null, citations = null;
for await (const chunk of stream) {
  ++chunks;
  assert.equal(chunk.object, 'chat.completion.chunk');
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  streamed += choice.delta.content ?? '';
  if (choice.finish_reason) finish = choice.finish_reason;
  if (chunk.citations) citations = chunk.citations;
}
assert.equal(streamed, whole.choices[0].message.content, 'greedy: streamed pieces add up to the whole answer');
assert.ok(chunks >= 3);
assert.equal(finish, whole.choices[0].finish_reason);
assert.deepEqual(usage, whole.usage);
assert.deepEqual(citations, whole.citations);

const chat = await client.chat.completions.create({
  model: 'stories.gguf', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 6, temperature: 0,
});
assert.equal(chat.usage.completion_tokens, 6);
assert.equal(chat.choices[0].finish_reason, 'length');
assert.equal(chat.saem.method, 'chat');
let chatted = '';
for await (const chunk of await client.chat.completions.create({
  model: 'stories.gguf', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 6, temperature: 0, stream: true,
})) chatted += chunk.choices[0]?.delta.content ?? '';
assert.equal(chatted, chat.choices[0].message.content);
await assert.rejects(client.chat.completions.create({ model: 'nowhere', messages: [question] }), (e) => {
  assert.ok(e instanceof OpenAI.NotFoundError, `404 as NotFoundError, got ${e}`);
  assert.equal(e.code, 'model_not_found');
  return true;
});
console.log(`openai client: models.list, embeddings.create (default, base64, float), chat.completions.create (collection and plain, whole and streamed), errors: ok`);

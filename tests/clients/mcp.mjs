// The official MCP TypeScript SDK against saem: one client spawns `saem mcp` over stdio, another
// connects to /mcp of the running saem serve (Streamable HTTP, with the API key). Each lists the
// tools, searches and asks over the samples and checks the cited path, adds a document and finds
// it, reads it as a resource, and deletes it.
// Usage: node mcp.mjs BASE_URL API_KEY SAEM_BINARY ENCODER (SAEM_CLIENT_WORK: the index, the model)
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';

const [base, apiKey, saem, encoder] = process.argv.slice(2);
const work = process.env.SAEM_CLIENT_WORK;

async function exercise(client, label, { generated }) {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name).sort();
  assert.deepEqual(names, ['add_document', 'ask', 'delete_document', 'get_document', 'list_documents', 'search'], label);
  const search = tools.find((t) => t.name === 'search');
  assert.equal(search.inputSchema.type, 'object');
  assert.deepEqual(search.inputSchema.required, ['query']);

  const found = await client.callTool({ name: 'search', arguments: { query: 'write-ahead log checkpoint', k: 3, mode: 'lexical' } });
  assert.equal(found.isError, false, JSON.stringify(found));
  assert.match(found.structuredContent.hits[0].path, /write-ahead-logging\.md$/);
  assert.match(found.content[0].text, /^\[1\] .*write-ahead-logging\.md/);

  // Asked with progress, a generated answer streams (server-sent events over HTTP, notification
  // lines over stdio): each progress message is the next piece, its progress the bytes so far.
  const progress = [];
  const asked = await client.callTool({ name: 'ask', arguments: { question: 'How does BM25 rank documents?' } }, undefined,
                                      { onprogress: (p) => progress.push(p) });
  assert.equal(asked.isError, false, JSON.stringify(asked));
  if (generated) {
    assert.ok(progress.length >= 2, `progress notifications: ${progress.length}`);
    assert.equal(progress.map((p) => p.message).join(''), asked.structuredContent.answer);
    assert.ok(progress.every((p, i) => i === 0 || p.progress > progress[i - 1].progress));
  }
  const answer = asked.structuredContent;
  assert.equal(answer.found, true);
  assert.equal(answer.method, generated ? 'generated' : 'extractive');
  assert.ok(answer.citations.length > 0);
  assert.match(answer.citations[0].path, /ranking\.html$/);
  assert.match(answer.citations[0].text, /BM25/);
  assert.match(asked.content[0].text, /Sources:\n\[1\] .*ranking\.html/);

  const added = await client.callTool({ name: 'add_document', arguments: { path: `notes/${label}.md`, text: '# Geysers\n\nGeysers erupt hot water.', metadata: { from: label } } });
  assert.equal(added.isError, false, JSON.stringify(added));
  const id = added.structuredContent.id;
  const geysers = await client.callTool({ name: 'search', arguments: { query: 'geysers erupt', filter: { metadata: { from: label } } } });
  assert.equal(geysers.structuredContent.hits.length, 1);
  assert.equal(geysers.structuredContent.hits[0].path, `notes/${label}.md`);

  const { resources } = await client.listResources();
  const uri = `saem://default/documents/${id}`;
  assert.ok(resources.some((r) => r.uri === uri && r.name === `notes/${label}.md`), 'the new document is a resource');
  const read = await client.readResource({ uri });
  assert.equal(read.contents[0].uri, uri);
  assert.match(read.contents[0].text, /Geysers erupt hot water\./);
  const doc = await client.callTool({ name: 'get_document', arguments: { id } });
  assert.match(doc.structuredContent.text, /Geysers erupt hot water\./);

  const deleted = await client.callTool({ name: 'delete_document', arguments: { id } });
  assert.equal(deleted.isError, false);
  const gone = await client.callTool({ name: 'get_document', arguments: { id } });
  assert.equal(gone.isError, true);
  assert.match(gone.content[0].text, /no document with id/);
  await assert.rejects(client.readResource({ uri }));
  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }));
  await client.ping();
}

// Over Streamable HTTP, behind the API key, with the server's decoder.
const http = new Client({ name: 'saem-test-http', version: '1.0.0' });
await http.connect(new StreamableHTTPClientTransport(new URL(base + '/mcp'), { requestInit: { headers: { Authorization: `Bearer ${apiKey}` } } }));
assert.equal(http.getServerVersion().name, 'saem');
await exercise(http, 'http', { generated: true });
await http.close();
const stranger = new Client({ name: 'saem-test-stranger', version: '1.0.0' });
await assert.rejects(stranger.connect(new StreamableHTTPClientTransport(new URL(base + '/mcp'))), /401|unauthorized|API key/i);

// Over stdio, a process of its own on the same index (no model: extractive answers).
const stdio = new Client({ name: 'saem-test-stdio', version: '1.0.0' });
await stdio.connect(new StdioClientTransport({ command: saem, args: ['mcp', '--db', `${work}/s.db`, '--encoder', encoder], stderr: 'pipe' }));
await exercise(stdio, 'stdio', { generated: false });
await stdio.close();

// --read-only offers no write tools.
const reader = new Client({ name: 'saem-test-reader', version: '1.0.0' });
await reader.connect(new StdioClientTransport({ command: saem, args: ['mcp', '--db', `${work}/s.db`, '--no-encoder', '--read-only'], stderr: 'pipe' }));
assert.deepEqual((await reader.listTools()).tools.map((t) => t.name).sort(), ['ask', 'get_document', 'list_documents', 'search']);
await reader.close();
// Cancelling over stdio: a generator that never answers holds an ask; the SDK's abort sends
// notifications/cancelled, saem ends the call and sends no reply for it, and keeps serving.
let remoteClosed = 0;
const silent = createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/event-stream' });
  res.on('close', () => { remoteClosed = Date.now(); });  // saem let go of the generation
});
await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
const patient = new Client({ name: 'saem-test-cancel', version: '1.0.0' });
const errors = [];
patient.onerror = (e) => errors.push(e);
await patient.connect(new StdioClientTransport({
  command: saem, args: ['mcp', '--db', `${work}/s.db`, '--no-encoder', '--generator-url', `http://127.0.0.1:${silent.address().port}/v1`,
                        '--generator-retries', '0', '--max-tokens', '16'], stderr: 'pipe' }));
const started = Date.now();
await assert.rejects(patient.callTool({ name: 'ask', arguments: { question: 'How does BM25 rank documents?' } }, undefined,
                                      { signal: AbortSignal.timeout(500) }), /abort|cancel/i);
const after = await patient.callTool({ name: 'search', arguments: { query: 'BM25' } });
assert.ok(after.structuredContent.hits.length > 0);
assert.ok(Date.now() - started < 5000, 'the cancelled call did not hold up the next');
for (let i = 0; i < 40 && !remoteClosed; ++i) await new Promise((resolve) => setTimeout(resolve, 50));
assert.ok(remoteClosed && remoteClosed - started < 3000, 'the cancelled ask let go of its generator request');
await new Promise((resolve) => setTimeout(resolve, 300));
assert.deepEqual(errors.map(String), [], 'no reply for the cancelled request');
await patient.close();
silent.closeAllConnections();
silent.close();

console.log('mcp: the SDK over Streamable HTTP and stdio: tools, search, ask with citations, add, resources, delete, read-only: ok');
